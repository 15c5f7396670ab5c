#pragma once
/// \file train/evaluate.hpp
/// `evaluate` / `evaluate_source`: a model's score on data seen through the hard masks of a
/// pipeline, and the Q of those masks — what the trainer measures after every epoch. A model's
/// optional `infer(x)` (model/model.hpp) computes the logits here instead of `forward`.

#include <cstddef>
#include <utility>
#include <vector>

#include "../backend/nn_backend.hpp"
#include "../io/dataset.hpp"
#include "../shape.hpp"
#include "batch_source.hpp"
#include "loss.hpp"

namespace selmask {

namespace detail {

/// Logits for evaluation: the model's `infer(x)` when it has one (model/model.hpp), else `forward`.
template <class Model, class T>
decltype(auto) infer(Model& model, const T& x) {
  if constexpr (requires { model.infer(x); }) {
    return model.infer(x);
  } else {
    return model.forward(x);
  }
}

/// The summed score of every sample of `source` (its batches 0, 1, … as it gives them) through
/// the hard masks, and their Q.
template <class Pipeline, class Model, class Source, class Loss>
std::pair<double, double> score_sum(Pipeline& pipe, Model& model, Source& source, const Loss& loss) {
  using B = typename Pipeline::backend;
  host_batch batch;
  tensor_t<B> scratch;
  double score = 0.0;
  double q = 1.0;
  for (std::size_t b = 0; b < source.batches(); ++b) {
    source.read(b, batch);
    const auto fr = pipe.forward(B::from_host(batch.x_shape, batch.x));
    q = fr.q;
    const auto& out = detail::infer(model, fr.output);
    loss.check(B::shape_of(out), batch);
    score += loss.template evaluate<B>(out, batch, scratch).score;
  }
  return {score, q};
}

} // namespace detail

/// Score (accuracy for the default loss) of `model` on `source` seen through the hard masks of
/// `pipe`, and the Q of those masks. The source is read once from its first batch to its last.
template <class Pipeline, class Model, batch_source Source, class Loss = softmax_cross_entropy_loss>
std::pair<double, double> evaluate_source(Pipeline& pipe, Model& model, Source& source,
                                          const Loss& loss = {}) {
  source.set_epoch(0);
  const auto [score, q] = detail::score_sum(pipe, model, source, loss);
  return {source.size() == 0 ? 0.0 : score / static_cast<double>(source.size()), q};
}

/// `evaluate_source` over an in-memory data set, in order, `batch_size` samples at a time.
template <class Pipeline, class Model, class Loss = softmax_cross_entropy_loss>
std::pair<double, double> evaluate(Pipeline& pipe, Model& model, const io::dataset& data,
                                   std::size_t batch_size = 500, const Loss& loss = {}) {
  if (data.empty()) {
    return {0.0, 1.0};
  }
  dataset_source source(data, batch_size, false);
  return evaluate_source(pipe, model, source, loss);
}

namespace detail {

template <class Pipeline>
void collect_masks(Pipeline& pipe, std::vector<std::vector<float>>& masks, std::vector<shape>& shapes) {
  using B = typename Pipeline::backend;
  masks.clear();
  shapes.clear();
  pipe.for_each_mask([&](auto& m) {
    const auto h = m.hard();
    masks.push_back(B::to_host(h));
    shapes.push_back(B::shape_of(h));
  });
}

} // namespace detail

} // namespace selmask
