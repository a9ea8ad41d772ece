// Calls a generic lambda with a typed pointer for a DType: the one place that maps runtime dtypes to C++ types.
#pragma once
#include <stdexcept>

#include "common/ops.h"

namespace rlnfast {

template <class F>
void dispatch_int_dtype(DType t, const void* p, F&& f) {
  switch (t) {
    case DType::u8: f(static_cast<const uint8_t*>(p)); break;
    case DType::i8: f(static_cast<const int8_t*>(p)); break;
    case DType::u16: f(static_cast<const uint16_t*>(p)); break;
    case DType::i16: f(static_cast<const int16_t*>(p)); break;
    case DType::u32: f(static_cast<const uint32_t*>(p)); break;
    case DType::i32: f(static_cast<const int32_t*>(p)); break;
    case DType::i64: f(static_cast<const int64_t*>(p)); break;
    default: throw std::invalid_argument("label map must have an integer dtype");
  }
}

// Any image dtype: the integer ones through dispatch_int_dtype, then float and double.
template <class F>
void dispatch_dtype(DType t, const void* p, F&& f) {
  if (t == DType::f32) f(static_cast<const float*>(p));
  else if (t == DType::f64) f(static_cast<const double*>(p));
  else dispatch_int_dtype(t, p, f);
}

}  // namespace rlnfast
