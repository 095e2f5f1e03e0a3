// Small dense linear algebra for the baselines (row-major, double): symmetric positive-definite
// solves by Cholesky. Internal to models/, header-only, torch-free.
#pragma once

#include <cmath>
#include <stdexcept>
#include <vector>

namespace spikeflow::models::linalg {

/// Row-major n × m matrix.
struct Matrix {
  size_t rows = 0, cols = 0;
  std::vector<double> a;
  Matrix() = default;
  Matrix(size_t r, size_t c, double v = 0.0) : rows(r), cols(c), a(r * c, v) {}
  double& operator()(size_t i, size_t j) { return a[i * cols + j]; }
  double operator()(size_t i, size_t j) const { return a[i * cols + j]; }
  static Matrix identity(size_t n) {
    Matrix m(n, n);
    for (size_t i = 0; i < n; ++i) m(i, i) = 1.0;
    return m;
  }
};

inline Matrix matmul(const Matrix& x, const Matrix& y) {
  Matrix z(x.rows, y.cols);
  for (size_t i = 0; i < x.rows; ++i)
    for (size_t k = 0; k < x.cols; ++k) {
      const double v = x(i, k);
      if (v == 0.0) continue;
      for (size_t j = 0; j < y.cols; ++j) z(i, j) += v * y(k, j);
    }
  return z;
}

inline Matrix transpose(const Matrix& x) {
  Matrix t(x.cols, x.rows);
  for (size_t i = 0; i < x.rows; ++i)
    for (size_t j = 0; j < x.cols; ++j) t(j, i) = x(i, j);
  return t;
}

inline Matrix add(const Matrix& x, const Matrix& y, double sy = 1.0) {
  Matrix z = x;
  for (size_t i = 0; i < z.a.size(); ++i) z.a[i] += sy * y.a[i];
  return z;
}

/// Solves S X = B for symmetric positive-definite S (n × n); B is n × m. Throws
/// std::runtime_error when S is not positive definite.
inline Matrix spd_solve(Matrix s, Matrix b) {
  const size_t n = s.rows;
  for (size_t j = 0; j < n; ++j) {
    double d = s(j, j);
    for (size_t k = 0; k < j; ++k) d -= s(j, k) * s(j, k);
    if (!(d > 0)) throw std::runtime_error("matrix is not positive definite");
    const double l = std::sqrt(d);
    s(j, j) = l;
    for (size_t i = j + 1; i < n; ++i) {
      double v = s(i, j);
      for (size_t k = 0; k < j; ++k) v -= s(i, k) * s(j, k);
      s(i, j) = v / l;
    }
  }
  for (size_t c = 0; c < b.cols; ++c) {
    for (size_t i = 0; i < n; ++i) {  // L y = b
      double v = b(i, c);
      for (size_t k = 0; k < i; ++k) v -= s(i, k) * b(k, c);
      b(i, c) = v / s(i, i);
    }
    for (size_t i = n; i-- > 0;) {  // Lᵀ x = y
      double v = b(i, c);
      for (size_t k = i + 1; k < n; ++k) v -= s(k, i) * b(k, c);
      b(i, c) = v / s(i, i);
    }
  }
  return b;
}

inline Matrix spd_inverse(const Matrix& s) { return spd_solve(s, Matrix::identity(s.rows)); }

}  // namespace spikeflow::models::linalg
