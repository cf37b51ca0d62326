// The net description the native passes run on, built once per pyquirk.nn.Net.
//
// Python hands over one record per layer (kind + hyper-parameters, see pyquirk/backends/cpu.py);
// build_net_spec() re-derives every shape and parameter offset from those and the input shape,
// exactly as Net.build does, so nothing the passes index with comes unchecked from Python.
//
// The layers become *units*: a Dense, Conv or Gate layer absorbs the activation that follows it (bias,
// activation and their R-terms run in one fused element-wise pass); Flatten disappears (a sample's
// [C, *S] block is already its flat feature vector); pools and stray activations are units of their own.
#pragma once

#include <string>
#include <vector>

#include "cpu/common.h"
#include "math/activations.h"
#include "math/losses.h"

namespace pyquirk {
namespace cpu {

struct LayerRecord {
  std::string kind;  // dense conv gate maxpool avgpool flatten identity relu leaky_relu tanh sigmoid gelu
  i64 out = 0;       // dense: out_features; conv: out_channels
  std::vector<i64> kernel, stride, padding;
  double slope = 0.01;  // leaky_relu
};

enum class UnitKind { Dense, Conv, Gate, MaxPool, AvgPool, Act };

struct Unit {
  UnitKind kind = UnitKind::Act;
  int layer = 0;                  // index of its (first) layer in net.layers, for messages
  math::Act act = math::Act::None;  // fused activation (Dense/Conv/Gate) or the activation itself (Act)
  double slope = 0.0;
  // Shapes. Features per sample: fin = cin·ih·iw, fout = cout·oh·ow. 1-D convolutions and pools
  // are 2-D ones with height 1; Dense has cin = fin, cout = fout and 1×1 "spatial" dims; Gate has
  // cin = cout units (or channels) of oh·ow positions each.
  i64 cin = 0, cout = 0, ih = 1, iw = 1, oh = 1, ow = 1;
  i64 kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0;
  i64 fin = 0, fout = 0;
  i64 ck = 0;  // GEMM reduction size: cin·kh·kw (conv), fin (dense)
  i64 w_off = -1, b_off = -1, w_size = 0;  // Gate: its gates at w_off, no bias

  bool has_params() const { return kind == UnitKind::Dense || kind == UnitKind::Conv || kind == UnitKind::Gate; }
  i64 positions() const { return oh * ow; }  // output positions per channel
  bool has_act() const { return act != math::Act::None && act != math::Act::Identity; }
};

struct NetSpec {
  std::vector<Unit> units;
  std::vector<i64> input_shape;
  i64 in_size = 0, n_outputs = 0, n_params = 0;
  double flops_per_sample = 0;  // GEMM flops of one sample's forward pass
  int first_param = 0;  // index of the first unit with parameters
  math::Loss loss = math::Loss::CE;
  std::vector<i64> param_offsets;  // offset of each parameter tensor, in Net.layout order
  std::string description;         // one line per unit, for repr
};

// Throws std::invalid_argument (ValueError in Python) for an inconsistent description.
NetSpec build_net_spec(const std::vector<LayerRecord>& layers, const std::vector<i64>& input_shape,
                       const std::string& loss);

}  // namespace cpu
}  // namespace pyquirk
