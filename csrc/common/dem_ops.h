// Contract of the elasticity and DEM ops (issue 3): filled in by that work.
#pragma once
