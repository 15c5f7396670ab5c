#pragma once
/// \file train/trainer.hpp
/// `learn_selection_masks`: Algorithm 1 of the paper (METHOD.md, "Algorithm 1") — a warm-up of the
/// network on full data, then epochs of exploration (masks and network on `L_task + λ·Q`) and
/// fixation (masks frozen at their hard values, network only) as a λ controller decides, τ
/// annealed per epoch. After every epoch the hard masks are evaluated on a validation split
/// (score and Q) and the test set (reported only), and the accuracy-versus-transferred-data front
/// keeps, per Q bucket, the best validation point with its masks and checkpoint.
///
/// The common case is one call:
/// ```cpp
/// auto result = selmask::learn_selection_masks(pipe, net, train, validation, &test,
///                                              {.lambda = 0.05f, .mask_epochs = 30},
///                                              selmask::round_schedule{},
///                                              selmask::progress_display{});
/// ```
/// The same call takes a `training_policies` bundle instead of the λ schedule (train/policies.hpp:
/// loss, λ controller, learning-rate schedule, mask optimiser, communicator — data-parallel runs,
/// train/communicator.hpp), and a batch source (train/batch_source.hpp) instead of the training set.
/// The model is a user's functor (model/model.hpp): `forward`, `backward` returning ∂L/∂x, and
/// optionally `step`/`zero_grad` (a model without them is frozen) and `save`/`load`. A budget ends
/// the exploration early: `trainer_options::target_q`, or a λ controller with `masks_final`
/// (train/budget.hpp); `keep_cells` / `keep_q` then project the masks onto exactly k cells or a
/// cost budget. Before the first epoch the planned mask steps are checked against the logits'
/// distance to a change (train/mask_reach.hpp). `state_dir` / `resume`: train/resume.hpp.
/// Deterministic for a fixed seed on the CPU, reference and emulated CUDA backends (checked by
/// tests/test_train.cpp). Each phase of the run is one member function of `detail::mask_trainer`.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "../backend/nn_backend.hpp"
#include "../error.hpp"
#include "../io/dataset.hpp"
#include "../model/model.hpp"
#include "../nn/weights_file.hpp"
#include "batch_source.hpp"
#include "budget.hpp"
#include "callbacks.hpp"
#include "checks.hpp"
#include "communicator.hpp"
#include "data_parallel.hpp"
#include "evaluate.hpp"
#include "front.hpp"
#include "keep_masks.hpp"
#include "loss.hpp"
#include "lr_schedule.hpp"
#include "mask_reach.hpp"
#include "policies.hpp"
#include "resume.hpp"
#include "schedule.hpp"

namespace selmask {

/// Training diverged (a NaN or infinite loss): the message names the epoch and batch, and where
/// the last good checkpoint is.
class training_diverged : public value_error {
public:
  using value_error::value_error;
};

struct trainer_options {
  float lambda = 0.05f;          ///< λ of the first exploration epoch (≥ 0)
  std::size_t warmup_epochs = 2; ///< network on full data first (0: e.g. weights were loaded)
  std::size_t mask_epochs = 20;  ///< epochs after the warm-up
  std::size_t batch_size = 128;  ///< for an in-memory training set (a batch source has its own)
  std::size_t eval_batch_size = 500;
  /// AdamW for the mask logits (the default mask optimiser policy): the reference's betas
  /// (0.5, 0.999), weight decay 1e-7.
  adamw_hyper mask_optimizer{
    .lr = 5e-3f, .beta1 = 0.5f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 1e-7f, .amsgrad = true};
  tau_schedule tau{};
  /// The last `final_fixation_epochs` of the `mask_epochs` are fixation epochs whatever the λ
  /// controller says: the network settles on the last (smallest) mask before training ends, the
  /// point of the front the rounds alone leave least trained. λ no longer grows in them.
  std::size_t final_fixation_epochs = 0;
  /// A budget: once an exploration epoch ends with a validation Q at most `target_q`, the masks
  /// stay as they are and every remaining mask epoch is a final fixation epoch (0: no budget).
  double target_q = 0.0;
  /// Exactly k cells: when the masks become final (the first final fixation epoch: `target_q`
  /// met, a λ controller's `masks_final`, or the last `final_fixation_epochs`), every any-mask
  /// keeps its k cells of largest logit (`keep_best_cells`, train/budget.hpp) for the remaining
  /// epochs. Needs one of those three to happen; k in 1..cells.
  std::optional<std::size_t> keep_cells{};
  /// A cost budget instead of a count: at the same point, the cells of largest σ(w)/cost are kept
  /// while their share of Q fits `keep_q` (in (0, 1]).
  std::optional<double> keep_q{};
  /// What happens when the planned exploration steps cannot change any mask (train/mask_reach.hpp):
  /// by default the mask learning rate is raised to what the steps need, and a note says so.
  mask_reach_policy mask_reach = mask_reach_policy::scale;
  double bucket_width = 0.05;
  std::uint64_t seed = 0;
  /// Where front checkpoints (`front_NN.weights`, `front_NN.masks`) and `last_good.weights` go;
  /// empty: nothing is saved.
  std::filesystem::path checkpoint_dir{};
  /// Where the whole training state goes (train/resume.hpp): `state_dir/state.bin`, replaced
  /// atomically after every epoch and every `state_every_batches` batches (0: epoch ends only);
  /// empty: no state.
  std::filesystem::path state_dir{};
  std::size_t state_every_batches = 0;
  /// Continue from `state_dir/state.bin` (a fresh start, with a message, when there is none).
  bool resume = false;
  /// With a `state_dir`: SIGINT / SIGTERM let the current batch finish, write the state and throw
  /// `training_interrupted` (`request_stop()` does the same without a signal).
  bool stop_on_signals = true;
};

struct training_result {
  accuracy_front front;
  double full_val_accuracy = NAN; ///< after the warm-up, all data kept
  double full_test_accuracy = NAN;
  std::size_t epochs_run = 0;
  /// The best validation point of the final fixation epochs: the masks training ends with (after
  /// the `keep_cells` / `keep_q` projection when one is set). Empty when no final fixation ran.
  std::optional<front_point> final_point;
  /// What the trainer changed or warns about (each also printed on stderr), e.g. a raised mask
  /// learning rate.
  std::vector<std::string> notes;
};

namespace detail {

/// What an epoch is, decided before it runs.
struct epoch_plan {
  std::size_t epoch = 0;
  phase current = phase::warmup;
  bool warm = false;
  bool explore = false;
  bool final_fixation = false;
};

/// One run of Algorithm 1. Constructed by `learn_selection_masks`; each phase is one function.
template <class Pipeline, class Model, class Source, class Policies, class... Callbacks>
class mask_trainer {
  using B = typename Pipeline::backend;
  using Loss = decltype(Policies::loss);
  using MaskOpt = decltype(std::declval<const Policies&>().mask_optimizer.template make<B>(
    std::declval<const trainer_options&>()));
  static constexpr bool trainable = trainable_model<Model, B>;
  static constexpr bool has_lr = requires(Model & m, float lr) {
    { m.learning_rate() } -> std::convertible_to<float>;
    m.set_learning_rate(lr);
  };
  using Lambda = decltype(Policies::lambda);
  using Comm = decltype(Policies::communicator);
  static_assert(!Comm::sharded || !trainable || gradient_model<Model, B>,
                "selmask::learn_selection_masks: data-parallel training (a sharded communicator) needs a "
                "model whose grads() lists its parameter gradients (train/data_parallel.hpp), as "
                "nn::sequential has");
  /// Optional λ-controller members (train/budget.hpp): a per-batch update and an early end.
  static constexpr bool has_end_batch = requires(Lambda & l, double q, float& lambda) {
    l.end_batch(q, lambda);
  };
  static constexpr bool has_masks_final = requires(const Lambda& l, std::size_t k, double q) {
    { l.masks_final(k, q) } -> std::convertible_to<bool>;
  };

public:
  mask_trainer(Pipeline& pipe, Model& model, Source& train, const io::dataset& validation,
               const io::dataset* test, const trainer_options& opt, Policies& policies,
               Callbacks&... callbacks)
    : pipe_(pipe), model_(model), train_(train), validation_(validation), test_(test), opt_(opt),
      policies_(policies),
      callbacks_(callbacks...), result_{accuracy_front(opt.bucket_width), NAN, NAN, 0, std::nullopt, {}},
      mask_opt_(policies.mask_optimizer.template make<B>(opt)) {}

  training_result run() {
    check_arguments();
    const detail::stop_on_signals signals(!opt_.state_dir.empty() && opt_.stop_on_signals);
    begin();
    for (std::size_t e = first_epoch_; e < epochs_ && !finished_; ++e) {
      const auto t_epoch = std::chrono::steady_clock::now();
      const epoch_plan plan = plan_epoch(e);
      set_learning_rate(plan);
      const epoch_totals totals = train_epoch(plan, t_epoch);
      front_point p = evaluate_epoch(plan);
      const bool improved = keep_point(p);
      if (plan.final_fixation &&
          (!result_.final_point || p.val_accuracy > result_.final_point->val_accuracy)) {
        result_.final_point = p;
      }
      const epoch_info info = make_epoch_info(plan, totals, p, improved, t_epoch);
      first_seconds_ = 0.0;
      history_.push_back(info);
      history_.back().masks.clear();
      history_.back().mask_shapes.clear();
      advance_schedules(plan, p.q);
      result_.epochs_run = e + 1;
      finished_ = notify_epoch_end(info) || e + 1 == epochs_;
      write_state(e + 1, 0, {}, 0.0);
    }
    finish();
    return std::move(result_);
  }

private:
  static constexpr const char* who = "selmask::learn_selection_masks: ";

  void check_arguments() {
    detail::check_options(opt_, policies_, who);
    if constexpr (!has_lr) {
      if (!policies_.lr.constant()) {
        throw value_error(std::string(who) +
                          "a learning-rate schedule that changes the rate needs a model with learning_rate() "
                          "and set_learning_rate(lr)");
      }
    }
    train_.validate();
    validation_.validate();
    if (test_) {
      test_->validate();
    }
    check_data_shapes();
    check_keep();
    if (!opt_.checkpoint_dir.empty()) {
      std::filesystem::create_directories(opt_.checkpoint_dir);
    }
    check_state_support();
  }

  // ---- the training state (train/resume.hpp) ---------------------------------------------------
  [[nodiscard]] std::filesystem::path state_path() const { return opt_.state_dir / "state.bin"; }

  void check_state_support() {
    if (opt_.state_dir.empty()) {
      if (opt_.resume) {
        throw value_error(std::string(who) + "resume needs a state_dir to resume from");
      }
      return;
    }
    const auto refuse = [&](const std::string& what) {
      throw value_error(std::string(who) + "a state_dir is set, but " + what +
                        ": the run could not be resumed bit for bit (train/resume.hpp)");
    };
    if constexpr (trainable && !resumable<Model>) {
      refuse("the model has no save_state(state, prefix) / load_state(state, prefix)");
    }
    if constexpr (!detail::storable_policy<MaskOpt>) {
      refuse("the mask optimiser has no save_state / load_state and is not trivially copyable");
    }
    if constexpr (!detail::storable_policy<Lambda>) {
      refuse("the lambda controller has no save_state / load_state and is not trivially copyable");
    }
    std::filesystem::create_directories(opt_.state_dir);
  }

  /// The settings a state must have been written with to be resumed here.
  [[nodiscard]] detail::run_fingerprint fingerprint() const {
    return detail::fingerprint_of(opt_, train_.size(), train_.batches(), validation_.size(),
                                  test_ ? test_->size() : 0, pipe_.sample_shape())
      .add("policies", typeid(Policies).name())
      .add("model", typeid(Model).name())
      .add("pipeline", typeid(Pipeline).name())
      .add("shards", policies_.communicator.shards());
  }

  /// Writes the whole state: the run continues at batch `batch` of epoch `epoch` with the epoch's
  /// running sums `t`, after `seconds` in that epoch.
  void write_state(std::size_t epoch, std::size_t batch, const epoch_totals& t, double seconds) {
    if (opt_.state_dir.empty() || !policies_.communicator.root()) {
      return;
    }
    io::state_file s;
    s.put("fingerprint", fingerprint().text());
    detail::put_record(s, detail::record_of({epoch, batch, t, seconds, lambda_, tau_, base_lr_, final_start_,
                                             images_done_, budget_reached_, finished_},
                                            result_, history_));
    pipe_.save_state(s, "pipeline.");
    if constexpr (trainable && resumable<Model>) {
      model_.save_state(s, "model.");
    }
    detail::save_policy(s, "mask_optimizer", mask_opt_);
    detail::save_policy(s, "lambda_controller", policies_.lambda);
    s.write(state_path());
  }

  /// With `resume` and a state in `state_dir`: everything back as it was when the state was
  /// written. Returns false (and says so) when there is no state to resume.
  bool read_state() {
    if (!opt_.resume) {
      return false;
    }
    const std::filesystem::path path = state_path();
    if (!std::filesystem::exists(path)) {
      std::fprintf(stderr, "%sno training state at %s: starting from the beginning\n", who,
                   path.string().c_str());
      return false;
    }
    const io::state_file s = io::state_file::read(path);
    fingerprint().check(s.bytes("fingerprint"), std::string(who) + "the state " + path.string() + " ");
    detail::run_record r = detail::get_record(s);
    pipe_.load_state(s, "pipeline.");
    if constexpr (trainable && resumable<Model>) {
      model_.load_state(s, "model.");
    }
    detail::load_policy(s, "mask_optimizer", mask_opt_);
    detail::load_policy(s, "lambda_controller", policies_.lambda);
    const detail::trainer_progress& g = r.progress;
    first_epoch_ = g.epoch;
    first_batch_ = g.batch;
    first_totals_ = g.totals;
    first_seconds_ = g.epoch_seconds;
    lambda_ = g.lambda;
    tau_ = g.tau;
    base_lr_ = g.base_lr;
    final_start_ = g.final_start;
    images_done_ = g.images_done;
    budget_reached_ = g.budget_reached;
    finished_ = g.finished;
    detail::restore(std::move(r), result_, history_);
    if constexpr (checkpointable_model<Model>) {
      if (!opt_.checkpoint_dir.empty() &&
          std::filesystem::exists(opt_.checkpoint_dir / "last_good.weights")) {
        last_good_ = opt_.checkpoint_dir / "last_good.weights";
      }
    }
    std::fprintf(stderr, "%sresuming from %s at epoch %zu, batch %zu\n", who, path.string().c_str(),
                 first_epoch_ + 1, first_batch_);
    return true;
  }

  /// After a batch: the state every `state_every_batches`, and a requested stop.
  void after_batch(const epoch_plan& p, std::size_t b, const epoch_totals& t,
                   std::chrono::steady_clock::time_point t_epoch) {
    if (opt_.state_dir.empty()) {
      return;
    }
    const bool stop = Comm::sharded ? agreed_stop_ : stop_requested();
    const std::size_t done = b + 1;
    if (stop ||
        (opt_.state_every_batches > 0 && done % opt_.state_every_batches == 0 && done < train_.batches())) {
      write_state(p.epoch, done, t, first_seconds_ + detail::seconds_since(t_epoch));
    }
    if (stop) {
      if constexpr (Comm::sharded) {
        detail::wait_for_root(policies_.communicator); // the others stop once the state is written
      }
      const int signo = detail::stop_signal;
      const std::string by = signo == SIGINT ? "SIGINT" : signo == SIGTERM ? "SIGTERM" : "request_stop()";
      throw training_interrupted(std::string(who) + "stopped by " + by + " after batch " +
                                   std::to_string(done) + " of " + std::to_string(train_.batches()) +
                                   " of epoch " + std::to_string(p.epoch + 1) +
                                   "; the training state is in " + state_path().string() +
                                   ": run again with resume (same settings) to continue",
                                 state_path(), signo > 0 ? signo : 0);
    }
  }

  void check_data_shapes() const {
    detail::check_data_shapes(pipe_.sample_shape(), train_.sample_shape(), train_.classes(), validation_,
                              test_, who);
  }

  void check_keep() {
    detail::check_keep(pipe_, opt_.keep_cells, opt_.keep_q,
                       opt_.final_fixation_epochs > 0 || opt_.target_q > 0.0 || has_masks_final, who);
  }
  void project_masks() { detail::project_masks(pipe_, opt_.keep_cells, opt_.keep_q); }

  /// The planned exploration steps against the distance of the logits to a change of a hard
  /// mask (train/mask_reach.hpp); acts as `opt_.mask_reach` says.
  void check_mask_reach() {
    if (auto msg = detail::apply_mask_reach(opt_.mask_reach, pipe_, policies_.lambda,
                                            opt_.mask_epochs - opt_.final_fixation_epochs, train_.batches(),
                                            mask_opt_, who)) {
      note(*msg);
    }
  }

  void note(const std::string& msg) {
    if (policies_.communicator.root()) {
      std::fprintf(stderr, "%s\n", msg.c_str());
    }
    result_.notes.push_back(msg);
  }

  void begin() {
    if constexpr (has_lr) {
      base_lr_ = static_cast<float>(model_.learning_rate());
    }
    pipe_.for_each_mask([&](auto& m) { mask_opt_.add(m.logits_for_update(), m.grad_for_update()); });
    if constexpr (Comm::sharded) {
      std::vector<tensor_t<B>*> grads;
      if constexpr (trainable) {
        grads = model_.grads();
      }
      pipe_.for_each_mask([&](auto& m) { grads.push_back(&m.grad_for_update()); });
      exchange_.bind(std::move(grads),
                     policies_.communicator.last_shard() - policies_.communicator.first_shard());
    }
    epochs_ = opt_.warmup_epochs + opt_.mask_epochs;
    if (!read_state()) {
      check_mask_reach();
      lambda_ = opt_.lambda;
      tau_ = opt_.tau.init;
    }
    pipe_.set_tau(tau_);
    t_start_ = std::chrono::steady_clock::now();
    images_total_ = epochs_ * train_.size();
    const train_begin_info info{epochs_,      train_.batches(), train_.size(), validation_.size(),
                                first_epoch_, first_batch_,     history_};
    for_each_callback([&](auto& c) {
      if constexpr (requires { c.on_train_begin(info); }) {
        c.on_train_begin(info);
      }
    });
  }

  epoch_plan plan_epoch(std::size_t e) {
    epoch_plan p;
    p.epoch = e;
    p.warm = e < opt_.warmup_epochs;
    p.final_fixation = !p.warm && (budget_reached_ || e >= epochs_ - opt_.final_fixation_epochs);
    if (p.final_fixation && final_start_ == 0) {
      final_start_ = e + 1; // stored one-based: 0 means "not yet"
      project_masks();      // the masks are final from here on
    }
    p.current = p.warm             ? phase::warmup
                : p.final_fixation ? phase::fixation
                                   : policies_.lambda.phase_of(e - opt_.warmup_epochs);
    p.explore = p.current == phase::exploration;
    pipe_.freeze_masks(!p.explore);
    return p;
  }

  void set_learning_rate(const epoch_plan& p) {
    if constexpr (has_lr) {
      if (policies_.lr.constant()) {
        return;
      }
      lr_context c{p.current, p.final_fixation, p.epoch, epochs_, 0, 0};
      if (p.final_fixation) {
        c.final_index = p.epoch - (final_start_ - 1);
        c.final_count = epochs_ - (final_start_ - 1);
      }
      model_.set_learning_rate(base_lr_ * static_cast<float>(policies_.lr.factor(c)));
    }
  }

  /// The epoch's batches (a resumed run starts at the batch its state was written after).
  epoch_totals train_epoch(const epoch_plan& p, std::chrono::steady_clock::time_point t_epoch) {
    train_.set_epoch(p.epoch);
    epoch_totals t = first_totals_;
    const std::size_t first = first_batch_;
    first_batch_ = 0;
    first_totals_ = {};
    for (std::size_t b = first; b < train_.batches(); ++b) {
      train_.read(b, batch_);
      train_batch(p, b, t);
      notify_batch_end(p, b, t);
      after_batch(p, b, t, t_epoch);
    }
    return t;
  }

  void train_batch(const epoch_plan& p, std::size_t b, epoch_totals& t) {
    if (p.explore) {
      mask_opt_.zero_grad();
    }
    if constexpr (trainable) {
      model_.zero_grad();
    }
    loss_sums l;
    const tensor_t<B>* gx = nullptr;
    if constexpr (Comm::sharded) { // the batch as shards, gradients summed over all (train/data_parallel.hpp)
      const auto r = detail::sharded_batch<B>(pipe_, model_, policies_.loss, batch_, policies_.communicator,
                                              lambda_, p.explore, stop_requested(), exchange_, shard_, dout_);
      l = r.sums;
      t.q = r.q;
      agreed_stop_ = r.stop;
    } else {
      const auto fr = pipe_.forward(B::from_host(batch_.x_shape, batch_.x));
      t.q = fr.q;
      const auto& out = model_.forward(fr.output);
      if (!output_checked_) {
        policies_.loss.check(B::shape_of(out), batch_);
        output_checked_ = true;
      }
      l = policies_.loss.template evaluate<B>(out, batch_, dout_);
      if (std::isfinite(l.loss)) {
        gx = &model_.backward(dout_);
      }
    }
    if (!std::isfinite(l.loss)) {
      throw training_diverged(std::string(who) + "the loss is not finite at epoch " +
                              std::to_string(p.epoch + 1) + ", batch " + std::to_string(b + 1) + "; " +
                              (last_good_.empty() ? std::string("no checkpoint was written yet")
                                                  : "the last good checkpoint is " + last_good_.string()));
    }
    if (p.explore) {
      if (gx) {
        pipe_.backward(*gx, lambda_);
      }
      mask_opt_.step();
      if constexpr (has_end_batch) {
        policies_.lambda.end_batch(t.q, lambda_);
      }
    }
    if constexpr (trainable) {
      model_.step();
    }
    t.loss += l.loss;
    t.score += l.score;
    t.seen += batch_.size();
    images_done_ += batch_.size();
  }

  void notify_batch_end(const epoch_plan& p, std::size_t b, const epoch_totals& t) {
    if constexpr (sizeof...(Callbacks) > 0) {
      const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start_).count();
      const double ips = elapsed > 0 ? static_cast<double>(images_done_) / elapsed : 0.0;
      const auto seen = static_cast<double>(t.seen);
      const batch_info info{p.epoch,
                            epochs_,
                            b,
                            train_.batches(),
                            p.current,
                            t.loss / seen,
                            t.score / seen,
                            t.q,
                            p.explore ? lambda_ : 0.0f,
                            tau_,
                            ips,
                            ips > 0 ? static_cast<double>(images_total_ - images_done_) / ips : NAN};
      for_each_callback([&](auto& c) {
        if constexpr (requires { c.on_batch_end(info); }) {
          c.on_batch_end(info);
        }
      });
    }
  }

  /// Stochastic masks draw in training and apply their expected mask in evaluation.
  void set_sampling(bool on) {
    pipe_.for_each_mask([on](auto& m) {
      if constexpr (requires { m.set_sampling(on); }) {
        m.set_sampling(on);
      }
    });
  }

  front_point evaluate_epoch(const epoch_plan& p) {
    set_sampling(false);
    const auto eval = [&](const io::dataset& d) {
      if constexpr (Comm::sharded) {
        return detail::evaluate_sharded(pipe_, model_, d, opt_.eval_batch_size, policies_.loss,
                                        policies_.communicator);
      } else {
        return evaluate(pipe_, model_, d, opt_.eval_batch_size, policies_.loss);
      }
    };
    const auto [val_score, val_q] = eval(validation_);
    const double test_score = test_ ? eval(*test_).first : NAN;
    set_sampling(true);
    if (p.warm || (p.epoch == 0 && opt_.warmup_epochs == 0)) {
      result_.full_val_accuracy = val_score;
      result_.full_test_accuracy = test_score;
    }
    front_point fp;
    fp.q = val_q;
    fp.val_accuracy = val_score;
    fp.test_accuracy = test_score;
    fp.epoch = p.epoch + 1;
    fp.lambda = p.warm ? 0.0f : lambda_;
    fp.tau = tau_;
    collect_masks(pipe_, fp.masks, fp.mask_shapes);
    if constexpr (Comm::sharded) {
      detail::check_same_masks(fp.masks, policies_.communicator, p.epoch);
    }
    return fp;
  }

  /// Offers the point to the front, writing its checkpoint first when it will be kept, then the
  /// last good weights. Returns whether the front changed.
  /// (Only the root process writes; every process records the same paths.)
  bool keep_point(front_point& p) {
    const bool root = policies_.communicator.root();
    if (result_.front.would_accept(p) && !opt_.checkpoint_dir.empty()) {
      char name[64];
      std::snprintf(name, sizeof name, "front_%03ld", result_.front.bucket_of(p.q));
      std::vector<nn::host_tensor> masks;
      for (std::size_t i = 0; i < p.masks.size(); ++i) {
        masks.push_back({p.mask_shapes[i], p.masks[i]});
      }
      if (root) {
        nn::write_weights_file(opt_.checkpoint_dir / (std::string(name) + ".masks"), masks);
      }
      if constexpr (checkpointable_model<Model>) {
        p.checkpoint = opt_.checkpoint_dir / (std::string(name) + ".weights");
        if (root) {
          model_.save(p.checkpoint);
        }
      }
    }
    const bool improved = result_.front.offer(p);
    if constexpr (checkpointable_model<Model>) {
      if (!opt_.checkpoint_dir.empty()) {
        last_good_ = opt_.checkpoint_dir / "last_good.weights";
        if (root) {
          model_.save(last_good_);
        }
      }
    }
    return improved;
  }

  epoch_info make_epoch_info(const epoch_plan& p, const epoch_totals& t, const front_point& fp, bool improved,
                             std::chrono::steady_clock::time_point t_epoch) const {
    const auto seen = static_cast<double>(t.seen);
    epoch_info info{p.epoch,
                    epochs_,
                    p.current,
                    p.explore ? lambda_ : 0.0f,
                    tau_,
                    t.loss / seen,
                    t.score / seen,
                    fp.val_accuracy,
                    fp.q,
                    fp.test_accuracy,
                    first_seconds_ + detail::seconds_since(t_epoch),
                    improved,
                    fp.masks,
                    fp.mask_shapes};
    return info;
  }

  /// λ and τ after an epoch: the budget check, then the λ controller (which may grow λ; τ then
  /// starts again from its initial value, else it anneals).
  void advance_schedules(const epoch_plan& p, double val_q) {
    if (p.explore && opt_.target_q > 0.0 && val_q <= opt_.target_q) {
      budget_reached_ = true;
    }
    if constexpr (has_masks_final) {
      if (p.explore && policies_.lambda.masks_final(p.epoch - opt_.warmup_epochs, val_q)) {
        budget_reached_ = true;
      }
    }
    if (!p.warm && !p.final_fixation) {
      const bool grew = policies_.lambda.end_epoch(p.epoch - opt_.warmup_epochs, val_q, lambda_);
      tau_ = grew ? opt_.tau.init : opt_.tau.next(tau_);
      pipe_.set_tau(tau_);
    }
  }

  bool notify_epoch_end(const epoch_info& info) {
    bool stop = false;
    for_each_callback([&](auto& c) {
      if constexpr (requires {
                      { c.on_epoch_end(info) } -> std::convertible_to<bool>;
                    }) {
        stop = static_cast<bool>(c.on_epoch_end(info)) || stop;
      } else if constexpr (requires { c.on_epoch_end(info); }) {
        c.on_epoch_end(info);
      }
    });
    return stop;
  }

  void finish() {
    if ((opt_.keep_cells || opt_.keep_q) && final_start_ == 0) {
      note(std::string(who) +
           "keep_cells / keep_q were never applied: the masks did not become final "
           "before the last epoch (set final_fixation_epochs >= 1, or an earlier by_epoch)");
    }
    if constexpr (has_lr) {
      model_.set_learning_rate(base_lr_); // as the caller gave it
    }
    for_each_callback([&](auto& c) {
      if constexpr (requires { c.on_train_end(result_.front); }) {
        c.on_train_end(result_.front);
      }
    });
  }

  template <class F>
  void for_each_callback(F&& f) {
    if (!policies_.communicator.root()) {
      return; // one process reports
    }
    std::apply([&](auto&... c) { (f(c), ...); }, callbacks_);
  }

  Pipeline& pipe_;
  Model& model_;
  Source& train_;
  const io::dataset& validation_;
  const io::dataset* test_;
  const trainer_options& opt_;
  Policies& policies_;
  std::tuple<Callbacks&...> callbacks_;
  training_result result_;
  MaskOpt mask_opt_;
  host_batch batch_;
  tensor_t<B> dout_;
  float base_lr_ = 0.0f;
  float lambda_ = 0.0f;
  float tau_ = 1.0f;
  std::size_t epochs_ = 0;
  std::size_t final_start_ = 0;
  bool budget_reached_ = false;
  bool output_checked_ = false;
  std::filesystem::path last_good_;
  std::vector<epoch_info> history_; ///< the epochs run, without their masks (for a resumed log)
  std::size_t first_epoch_ = 0;     ///< where a resumed run continues
  std::size_t first_batch_ = 0;
  epoch_totals first_totals_{};
  double first_seconds_ = 0.0;
  bool finished_ = false;
  detail::gradient_exchange<B> exchange_; ///< sharded runs: the gradients gathered every batch
  host_batch shard_;
  bool agreed_stop_ = false;
  std::chrono::steady_clock::time_point t_start_;
  std::size_t images_done_ = 0;
  std::size_t images_total_ = 0;
};

template <class Pipeline, class Model>
constexpr void check_trainer_types() {
  using B = typename Pipeline::backend;
  static_assert(nn_backend<B>, "selmask::learn_selection_masks: the pipeline's backend must model "
                               "selmask::nn_backend (backend/nn_backend.hpp)");
  static_assert(differentiable_model<Model, B>,
                "selmask::learn_selection_masks: the model must have forward(x) -> output and "
                "backward(dL/doutput) -> dL/dx on the pipeline's backend (see model/model.hpp)");
}

template <class Pipeline, class Model, class Source, class Policies, class... Callbacks>
training_result run_trainer(Pipeline& pipe, Model& model, Source& train, const io::dataset& validation,
                            const io::dataset* test, const trainer_options& opt, Policies& policies,
                            Callbacks&... callbacks) {
  check_trainer_types<Pipeline, Model>();
  using B = typename Pipeline::backend;
  static_assert(task_loss<decltype(policies.loss), B>,
                "selmask::learn_selection_masks: the loss policy must model selmask::task_loss "
                "(name, check(shape, batch), evaluate<B>(output, batch, grad); train/loss.hpp)");
  static_assert(mask_optimizer_policy<decltype(policies.mask_optimizer), B>,
                "selmask::learn_selection_masks: the mask optimiser policy must have make<B>(options) "
                "returning an object with add(param, grad), step() and zero_grad() (train/policies.hpp)");
  mask_trainer<Pipeline, Model, Source, Policies, Callbacks...> t(pipe, model, train, validation, test, opt,
                                                                  policies, callbacks...);
  return t.run();
}

} // namespace detail

/// Algorithm 1 on an in-memory training set with a λ schedule (the common case).
template <class Pipeline, class Model, lambda_schedule Schedule = round_schedule, class... Callbacks>
training_result learn_selection_masks(Pipeline& pipe, Model& model, const io::dataset& train,
                                      const io::dataset& validation, const io::dataset* test,
                                      const trainer_options& opt = {}, Schedule schedule = {},
                                      Callbacks&&... callbacks) {
  auto policies = training_policies<>{}.with_lambda(std::move(schedule));
  dataset_source source(train, opt.batch_size, true, opt.seed);
  return detail::run_trainer(pipe, model, source, validation, test, opt, policies, callbacks...);
}

/// Algorithm 1 on an in-memory training set with a bundle of policies (train/policies.hpp).
template <class Pipeline, class Model, class Policies, class... Callbacks>
requires is_training_policies<Policies> training_result learn_selection_masks(
  Pipeline& pipe, Model& model, const io::dataset& train, const io::dataset& validation,
  const io::dataset* test, const trainer_options& opt, Policies policies, Callbacks&&... callbacks) {
  dataset_source source(train, opt.batch_size, true, opt.seed);
  return detail::run_trainer(pipe, model, source, validation, test, opt, policies, callbacks...);
}

/// Algorithm 1 reading its training batches from a batch source (train/batch_source.hpp), e.g.
/// `io::idx_stream_source` for data on disk; `Policies` is a λ schedule or a `training_policies`.
template <class Pipeline, class Model, batch_source Source, class Policies = round_schedule,
          class... Callbacks>
training_result learn_selection_masks(Pipeline& pipe, Model& model, Source& train,
                                      const io::dataset& validation, const io::dataset* test,
                                      const trainer_options& opt = {}, Policies policies = {},
                                      Callbacks&&... callbacks) {
  if constexpr (is_training_policies<Policies>) {
    return detail::run_trainer(pipe, model, train, validation, test, opt, policies, callbacks...);
  } else {
    static_assert(lambda_schedule<Policies>, "selmask::learn_selection_masks: the argument after the options "
                                             "must be a λ schedule or a selmask::training_policies");
    auto bundle = training_policies<>{}.with_lambda(std::move(policies));
    return detail::run_trainer(pipe, model, train, validation, test, opt, bundle, callbacks...);
  }
}

} // namespace selmask
