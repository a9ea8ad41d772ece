// Contract of the fractal box-counting ops (issue 4): filled in by that work.
#pragma once
