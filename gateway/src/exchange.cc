#include "trellis/gateway/exchange.h"

namespace trellis::gateway {

struct Exchange::CallbackTransport final : ExchangeTransport {
  CallbackTransport(Sink sink, Poster poster, TakeoverSink takeover_sink)
      : sink(std::move(sink)), poster(std::move(poster)), takeover_sink(std::move(takeover_sink)) {}

  Sink sink;
  Poster poster;
  TakeoverSink takeover_sink;

  void deliver(HttpResponse& response) override { sink(response); }
  void post(std::function<void()> work) override { poster(std::move(work)); }
  void post_after(std::chrono::milliseconds, std::function<void()> work) override {
    poster(std::move(work));
  }
  bool can_take_over() const override { return static_cast<bool>(takeover_sink); }
  void take_over(HttpResponse& head, TakeoverHandler handler) override {
    takeover_sink(head, std::move(handler));
  }
};

Exchange::Exchange(HttpRequest req, const std::vector<std::unique_ptr<Filter>>& filters,
                   std::shared_ptr<ExchangeTransport> transport)
    : request(std::move(req)), filters_(filters), transport_(std::move(transport)) {}

Exchange::Exchange(HttpRequest req, const std::vector<std::unique_ptr<Filter>>& filters, Sink sink,
                   Poster poster, TakeoverSink takeover_sink)
    : Exchange(std::move(req), filters,
               std::make_shared<CallbackTransport>(std::move(sink), std::move(poster),
                                                   std::move(takeover_sink))) {}

void Exchange::start() {
  self_while_starting_ = shared_from_this();
  // Reset however start() ends: a filter that throws must not leave the exchange owning itself.
  struct Reset {
    std::shared_ptr<Exchange>& self;
    ~Reset() { self.reset(); }
  } reset{self_while_starting_};
  next();
}

void Exchange::next() {
  if (responded_) return;
  if (entered_ >= filters_.size()) {
    respond_error(500, "internal", "no filter answered the request");
    return;
  }
  auto& filter = filters_[entered_++];
  if (self_while_starting_) return filter->on_request(self_while_starting_);
  filter->on_request(shared_from_this());
}

void Exchange::respond(HttpResponse answer) {
  if (responded_ || hold_ == Hold::kFailed) return;
  if (hold_ == Hold::kPending) {
    if (!held_answer_) held_answer_ = std::make_unique<HttpResponse>(std::move(answer));
    return;
  }
  send(std::move(answer));
}

void Exchange::send(HttpResponse answer) {
  if (responded_) return;
  responded_ = true;
  response = std::move(answer);
  context.answered = std::chrono::steady_clock::now();
  for (size_t i = entered_; i-- > 0;) filters_[i]->on_response(*this);
  transport_->deliver(response);
}

void Exchange::hold() {
  if (hold_ == Hold::kNone) hold_ = Hold::kPending;
}

void Exchange::release_hold() {
  if (hold_ != Hold::kPending) return;
  hold_ = Hold::kReleased;
  auto work = std::move(held_work_);
  held_work_.clear();
  for (auto& item : work) item();
  if (held_answer_) {
    auto answer = std::move(*held_answer_);
    held_answer_.reset();
    send(std::move(answer));
  }
}

void Exchange::fail_hold(HttpResponse answer) {
  if (hold_ != Hold::kPending) return;
  hold_ = Hold::kFailed;
  held_work_.clear();
  held_answer_.reset();
  send(std::move(answer));
}

void Exchange::after_hold(std::function<void()> work) {
  if (hold_ == Hold::kFailed) return;
  if (hold_ == Hold::kPending) {
    held_work_.push_back(std::move(work));
    return;
  }
  work();
}

// Live push takes over before the auth filter (it authenticates the stream itself): no hold here.
void Exchange::take_over(HttpResponse head, TakeoverHandler handler) {
  if (responded_) return;
  if (!transport_->can_take_over()) {
    respond_error(500, "internal", "this listener cannot take connections over");
    return;
  }
  responded_ = true;
  response = std::move(head);
  context.answered = std::chrono::steady_clock::now();
  for (size_t i = entered_; i-- > 0;) filters_[i]->on_response(*this);
  transport_->take_over(response, std::move(handler));
}

void Exchange::respond_error(int status, std::string_view code, std::string_view message) {
  respond(json_error(status, code, message, context.request_id));
}

void Exchange::post_after(std::chrono::milliseconds delay, std::function<void()> work) {
  transport_->post_after(delay, std::move(work));
}

void Exchange::post(std::function<void()> work) {
  transport_->post(std::move(work));
}

}  // namespace trellis::gateway
