#include "cpu/netspec.h"

#include <sstream>
#include <stdexcept>

namespace pyquirk {
namespace cpu {

namespace {

constexpr i64 kMaxSize = i64(1) << 40;  // any feature or parameter count beyond this is nonsense

[[noreturn]] void fail(int layer, const std::string& what) {
  throw std::invalid_argument("net description, layer " + std::to_string(layer) + ": " + what);
}

i64 checked_mul(i64 a, i64 b, int layer) {
  if (a < 0 || b < 0 || (a > 0 && b > kMaxSize / a)) fail(layer, "size overflow");
  return a * b;
}

i64 prod(const std::vector<i64>& v, int layer) {
  i64 p = 1;
  for (i64 s : v) p = checked_mul(p, s, layer);
  return p;
}

// kernel/stride/padding of a d-dimensional layer as (height, width); a 1-D layer is a 2-D one of
// height 1 (kernel and stride 1, padding 0 along the height: `minimum`).
void hw(const std::vector<i64>& v, size_t d, i64 minimum, const char* name, int layer, i64& h, i64& w) {
  if (v.size() != d) fail(layer, std::string(name) + " needs " + std::to_string(d) + " values");
  for (i64 e : v)
    if (e < minimum || e > kMaxSize) fail(layer, std::string(name) + " out of range");
  h = d == 2 ? v[0] : minimum;
  w = v[d - 1];
}

i64 out_size(i64 in, i64 k, i64 st, i64 pad, int layer) {
  if (in + 2 * pad < k) fail(layer, "kernel does not fit the input");
  return (in + 2 * pad - k) / st + 1;
}

math::Act act_code(const std::string& kind) {
  if (kind == "identity") return math::Act::Identity;
  if (kind == "relu") return math::Act::ReLU;
  if (kind == "leaky_relu") return math::Act::LeakyReLU;
  if (kind == "tanh") return math::Act::Tanh;
  if (kind == "sigmoid") return math::Act::Sigmoid;
  if (kind == "gelu") return math::Act::GELU;
  return math::Act::None;
}

// Spatial input of a conv/pool from the current feature shape [C, *S], d = 1 or 2.
void spatial_in(Unit& u, const std::vector<i64>& shape) {
  u.cin = shape[0];
  u.ih = shape.size() == 3 ? shape[1] : 1;
  u.iw = shape.back();
}

}  // namespace

NetSpec build_net_spec(const std::vector<LayerRecord>& layers, const std::vector<i64>& input_shape,
                       const std::string& loss) {
  NetSpec net;
  if (layers.empty()) throw std::invalid_argument("net description: no layers");
  if (input_shape.empty() || input_shape.size() > 3)
    throw std::invalid_argument("net description: input_shape must have 1 to 3 dimensions");
  for (i64 s : input_shape)
    if (s < 1 || s > kMaxSize) throw std::invalid_argument("net description: input_shape must be positive");
  if (loss == "ce" || loss == "cross_entropy") net.loss = math::Loss::CE;
  else if (loss == "mse") net.loss = math::Loss::MSE;
  else throw std::invalid_argument("net description: unknown loss '" + loss + "'");
  net.input_shape = input_shape;
  net.in_size = prod(input_shape, -1);

  std::vector<i64> shape = input_shape;
  i64 offset = 0;
  std::ostringstream desc;
  for (size_t li = 0; li < layers.size(); ++li) {
    const LayerRecord& r = layers[li];
    const int L = static_cast<int>(li);
    const math::Act act = act_code(r.kind);
    if (act != math::Act::None) {
      if (!net.units.empty() && net.units.back().has_params() && net.units.back().act == math::Act::None) {
        net.units.back().act = act;  // fused into the preceding Dense/Conv/Gate
        net.units.back().slope = r.slope;
        continue;
      }
      Unit u;
      u.kind = UnitKind::Act;
      u.layer = L;
      u.act = act;
      u.slope = r.slope;
      u.fin = u.fout = prod(shape, L);
      net.units.push_back(u);
      continue;
    }
    if (r.kind == "flatten") {
      shape = {prod(shape, L)};
      continue;
    }
    Unit u;
    u.layer = L;
    u.fin = prod(shape, L);
    if (r.kind == "dense") {
      if (shape.size() != 1) fail(L, "dense needs a flat input (add a flatten layer)");
      if (r.out < 1 || r.out > kMaxSize) fail(L, "out_features must be positive");
      u.kind = UnitKind::Dense;
      u.cin = u.ck = shape[0];
      u.cout = u.fout = r.out;
      shape = {r.out};
    } else if (r.kind == "conv") {
      const size_t d = r.kernel.size();
      if (d != 1 && d != 2) fail(L, "conv kernel needs 1 or 2 values");
      if (shape.size() != d + 1) fail(L, "conv input must be (channels, " + std::to_string(d) + " spatial dims)");
      if (r.out < 1 || r.out > kMaxSize) fail(L, "out_channels must be positive");
      u.kind = UnitKind::Conv;
      spatial_in(u, shape);
      hw(r.kernel, d, 1, "kernel", L, u.kh, u.kw);
      hw(r.stride, d, 1, "stride", L, u.sh, u.sw);
      hw(r.padding, d, 0, "padding", L, u.ph, u.pw);
      u.cout = r.out;
      u.oh = out_size(u.ih, u.kh, u.sh, u.ph, L);
      u.ow = out_size(u.iw, u.kw, u.sw, u.pw, L);
      u.ck = checked_mul(u.cin, checked_mul(u.kh, u.kw, L), L);
      u.fout = checked_mul(u.cout, checked_mul(u.oh, u.ow, L), L);
      shape = d == 2 ? std::vector<i64>{u.cout, u.oh, u.ow} : std::vector<i64>{u.cout, u.ow};
    } else if (r.kind == "gate") {
      u.kind = UnitKind::Gate;
      u.cin = u.cout = shape[0];
      if (shape.size() == 3) u.ih = u.oh = shape[1];
      if (shape.size() >= 2) u.iw = u.ow = shape.back();
      u.ck = 1;
      u.fout = u.fin;
    } else if (r.kind == "maxpool" || r.kind == "avgpool") {
      const size_t d = shape.size() - 1;
      if (d != 1 && d != 2) fail(L, "pooling needs input (channels, L) or (channels, H, W)");
      u.kind = r.kind == "maxpool" ? UnitKind::MaxPool : UnitKind::AvgPool;
      spatial_in(u, shape);
      hw(r.kernel, d, 1, "kernel", L, u.kh, u.kw);
      hw(r.stride, d, 1, "stride", L, u.sh, u.sw);
      if (!r.padding.empty()) fail(L, "pooling has no padding");
      u.cout = u.cin;
      u.oh = out_size(u.ih, u.kh, u.sh, 0, L);
      u.ow = out_size(u.iw, u.kw, u.sw, 0, L);
      u.fout = checked_mul(u.cout, checked_mul(u.oh, u.ow, L), L);
      shape = d == 2 ? std::vector<i64>{u.cout, u.oh, u.ow} : std::vector<i64>{u.cout, u.ow};
    } else {
      fail(L, "unknown layer kind '" + r.kind + "'");
    }
    if (u.kind == UnitKind::Dense || u.kind == UnitKind::Conv)
      net.flops_per_sample += 2.0 * static_cast<double>(u.cout * u.ck) * static_cast<double>(u.oh * u.ow);
    if (u.has_params()) {
      u.w_size = checked_mul(u.cout, u.ck, L);
      u.w_off = offset;
      net.param_offsets.push_back(u.w_off);
      offset += u.w_size;
      if (u.kind != UnitKind::Gate) {
        u.b_off = offset;
        net.param_offsets.push_back(u.b_off);
        offset += u.cout;
      }
      if (offset > kMaxSize) fail(L, "too many parameters");
    }
    net.units.push_back(u);
  }
  if (shape.size() != 1) throw std::invalid_argument("net description: the last layer must output flat logits");
  net.n_outputs = shape[0];
  net.n_params = offset;
  if (net.n_params == 0) throw std::invalid_argument("net description: the network has no parameters");
  net.first_param = 0;
  while (!net.units[net.first_param].has_params()) ++net.first_param;

  static const char* kinds[] = {"dense", "conv", "gate", "maxpool", "avgpool", "act"};
  static const char* acts[] = {"", "+identity", "+relu", "+leaky_relu", "+tanh", "+sigmoid", "+gelu"};
  for (const Unit& u : net.units)
    desc << kinds[static_cast<int>(u.kind)] << acts[static_cast<int>(u.act)] << " " << u.fin << "->" << u.fout
         << "; ";
  net.description = desc.str();
  return net;
}

}  // namespace cpu
}  // namespace pyquirk
