// A model written by hand (no network kit): multinomial logistic regression in ~40 lines that
// satisfies selmask::trainable_model, trained jointly with a channel(any) mask on synthetic
// many-band data where only 3 of 24 bands carry the signal. Prints which bands the mask kept.
#include <selmask/selmask.hpp>
#include <selmask/train/trainer.hpp>

#include <cstdio>
#include <random>

namespace {
using B = selmask::cpu;

/// logits = W·vec(x) + b, trained by plain SGD.
class logistic_regression {
public:
  logistic_regression(std::size_t inputs, std::size_t classes, float lr)
    : d_(inputs), k_(classes), lr_(lr), w_(inputs * classes, 0.0f), b_(classes, 0.0f), gw_(w_.size(), 0.0f),
      gb_(classes, 0.0f) {}

  const B::tensor& forward(const B::tensor& x) {
    x_ = &x;
    n_ = x.shape()[0];
    std::vector<float> out(n_ * k_);
    for (std::size_t n = 0; n < n_; ++n)
      for (std::size_t k = 0; k < k_; ++k) {
        float s = b_[k];
        for (std::size_t i = 0; i < d_; ++i)
          s += w_[k * d_ + i] * x.data()[n * d_ + i];
        out[n * k_ + k] = s;
      }
    logits_ = B::from_host(selmask::shape{n_, k_}, out);
    return logits_;
  }
  const B::tensor& backward(const B::tensor& g) {
    std::vector<float> dx(n_ * d_, 0.0f);
    for (std::size_t n = 0; n < n_; ++n)
      for (std::size_t k = 0; k < k_; ++k) {
        const float gk = g.data()[n * k_ + k];
        gb_[k] += gk;
        for (std::size_t i = 0; i < d_; ++i) {
          gw_[k * d_ + i] += gk * x_->data()[n * d_ + i];
          dx[n * d_ + i] += gk * w_[k * d_ + i];
        }
      }
    dx_ = B::from_host(B::shape_of(*x_), dx);
    return dx_;
  }
  void step() {
    for (std::size_t i = 0; i < w_.size(); ++i)
      w_[i] -= lr_ * gw_[i];
    for (std::size_t k = 0; k < k_; ++k)
      b_[k] -= lr_ * gb_[k];
  }
  void zero_grad() {
    std::fill(gw_.begin(), gw_.end(), 0.0f);
    std::fill(gb_.begin(), gb_.end(), 0.0f);
  }

private:
  std::size_t d_, k_, n_ = 0;
  float lr_;
  std::vector<float> w_, b_, gw_, gb_;
  const B::tensor* x_ = nullptr;
  B::tensor logits_, dx_;
};
static_assert(selmask::trainable_model<logistic_regression, B>);

/// 24 bands of 4×4 pixels; the class (of 3) is decided by bands 2, 9 and 17, the rest is noise
/// correlated with nothing.
selmask::io::dataset make_bands(std::size_t n, std::uint64_t seed) {
  selmask::io::dataset d;
  d.sample = selmask::shape{24, 4, 4};
  d.classes = 3;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  std::uniform_int_distribution<int> cls(0, 2);
  const std::size_t informative[3] = {2, 9, 17};
  for (std::size_t i = 0; i < n; ++i) {
    const int y = cls(rng);
    d.labels.push_back(y);
    for (std::size_t c = 0; c < 24; ++c) {
      float shift = 0.0f;
      for (std::size_t j = 0; j < 3; ++j) {
        if (c == informative[j])
          shift = (y == static_cast<int>(j)) ? 1.5f : -0.5f;
      }
      for (std::size_t p = 0; p < 16; ++p)
        d.images.push_back(shift + noise(rng));
    }
  }
  return d;
}
} // namespace

int main() {
  const auto train = make_bands(1500, 1);
  const auto val = make_bands(500, 2);
  const auto test = make_bands(500, 3);

  using pipe = selmask::pipeline<selmask::any_mask<selmask::channel>>;
  pipe::on<B> masks(train.sample, /*seed=*/7);
  logistic_regression model(24 * 16, 3, 0.01f);

  selmask::trainer_options opt;
  opt.lambda = 0.5f;
  opt.warmup_epochs = 2;
  opt.mask_epochs = 16;
  opt.batch_size = 50;
  opt.mask_optimizer.lr = 0.05f;
  const auto result = selmask::learn_selection_masks(
    masks, model, train, val, &test, opt, selmask::round_schedule{2, 1, 1.5f}, selmask::progress_display{0});

  std::printf("full data: test accuracy %.3f\n", result.full_test_accuracy);
  std::printf("front (q = fraction of bands sent):\n   q    val   test  epoch  kept bands\n");
  for (const auto& p : result.front.points()) {
    std::printf("%5.3f  %.3f  %.3f  %5zu  ", p.q, p.val_accuracy, p.test_accuracy, p.epoch);
    for (std::size_t c = 0; c < 24; ++c) {
      if (p.masks[0][c] == 1.0f)
        std::printf("%zu ", c);
    }
    std::printf("\n");
  }
  const auto* small = result.front.best_within(0.15);
  if (!small) {
    std::printf("no point with q <= 0.15\n");
    return 1;
  }
  std::printf("with %.1f %% of the bands: test accuracy %.3f\n", 100 * small->q, small->test_accuracy);
  return 0;
}
