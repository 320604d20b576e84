#include "tests/sim/client.h"

#include <sstream>

#include "statemachine/samples/sequence.h"

namespace ballot::sim {

using samples::SequenceGenerator;

namespace {
constexpr double kReadFraction = 0.3;
constexpr Time kThinkMaxMs = 3 * kTickMs;
constexpr int kBouncesMax = 3;  // redirects followed at once before backing off
}  // namespace

Client::Client(int index, int nodes, ClientHost* host) : index_(index), nodes_(nodes), host_(host) {
  next_op_ms_ = host_->rng().Uniform(0, 10 * kTickMs);
  leader_guess_ = RandomNode();
}

paxos::NodeId Client::RandomNode() {
  return static_cast<paxos::NodeId>(host_->rng().Uniform(1, nodes_));
}

void Client::Log(const std::string& what) const {
  if (!host_->trace().verbose()) return;
  host_->trace().Log(host_->now(), "client " + std::to_string(client_id()) + " " + what);
}

void Client::Tick() {
  const Time now = host_->now();
  if (!op_) {
    if (draining_ && drain_ops_left_ == 0) return;
    if (now < next_op_ms_) return;
    if (draining_) --drain_ops_left_;
    StartOp();
    return;
  }
  if (resend_at_ms_ != 0 && now >= resend_at_ms_) {
    Send();
  } else if (resend_at_ms_ == 0 && now - op_->last_send_ms >= kTimeoutMs) {
    Log("times out on node " + std::to_string(op_->target));
    op_->target = op_->target % nodes_ + 1;  // try the next node
    Send();
  }
}

void Client::StartOp() {
  Rng& rng = host_->rng();
  Op op;
  op.is_read = rng.Chance(kReadFraction);
  op.op_id = next_op_id_++;
  if (!op.is_read) {
    op.sequence = next_sequence_++;
    op.count = rng.Uniform(1, kCountMax);
  }
  op.sent_ms = host_->now();
  op.target = leader_guess_;
  op_ = op;
  bounces_ = 0;
  Send();
}

void Client::Send() {
  CHECK(op_.has_value());
  resend_at_ms_ = 0;
  op_->last_send_ms = host_->now();
  ++op_->attempts;
  ClientRequest r;
  r.kind = op_->is_read ? ClientRequest::Kind::kRead : ClientRequest::Kind::kNext;
  r.client_id = client_id();
  r.op_id = op_->op_id;
  r.sequence = op_->sequence;
  r.acked_sequence = acked_sequence_;
  r.count = op_->count;
  host_->trace().Fold({0xC11E, client_id(), op_->op_id, op_->target, op_->attempts});
  if (host_->trace().verbose()) {
    std::ostringstream os;
    os << "sends op " << op_->op_id << (op_->is_read ? " read" : " next(");
    if (!op_->is_read) os << op_->count << ") seq " << op_->sequence;
    os << " to node " << op_->target << " (attempt " << op_->attempts << ")";
    Log(os.str());
  }
  host_->Send(Envelope{endpoint(), op_->target, r});
}

void Client::RetryLater(paxos::NodeId target) {
  op_->target = target;
  resend_at_ms_ = host_->now() + host_->rng().Uniform(1, 3) * kTickMs;
}

bool Client::Matches(const ClientReply& r) const {
  if (!op_ || r.client_id != client_id() || r.is_read != op_->is_read) return false;
  return op_->is_read ? r.op_id == op_->op_id : r.sequence == op_->sequence;
}

void Client::OnReply(Endpoint from, const ClientReply& r) {
  if (!Matches(r)) return;  // an answer to an earlier op or attempt
  if (r.kind == ClientReply::Kind::kResult) {
    Complete(from, r);
    return;
  }
  // Rejections from a node we have since moved away from are stale.
  if (from != op_->target || resend_at_ms_ != 0) return;
  if (r.kind == ClientReply::Kind::kNotLeader && r.hint != paxos::kNoNode &&
      r.hint != op_->target && bounces_ < kBouncesMax) {
    ++bounces_;
    Log("redirected to node " + std::to_string(r.hint));
    op_->target = r.hint;
    Send();
    return;
  }
  bounces_ = 0;
  const bool has_hint = r.kind == ClientReply::Kind::kNotLeader && r.hint != paxos::kNoNode;
  RetryLater(has_hint ? r.hint : RandomNode());
}

void Client::Complete(Endpoint from, const ClientReply& r) {
  AckedOp acked;
  acked.client_id = client_id();
  acked.op_id = op_->op_id;
  acked.is_read = op_->is_read;
  acked.sequence = op_->sequence;
  acked.sent_ms = op_->sent_ms;
  acked.acked_ms = host_->now();
  acked.outcome = r.outcome;
  std::ostringstream os;
  if (r.outcome.code != StatusCode::kOk) {
    os << "client " << client_id() << " op " << op_->op_id
       << " got an error: " << StatusCodeName(r.outcome.code) << " " << r.outcome.message;
    host_->checker().Fail(os.str());
    return;
  }
  if (op_->is_read) {
    Result<uint64_t> v = SequenceGenerator::DecodePeek(r.outcome.data);
    if (!v.ok()) return host_->checker().Fail("undecodable peek: " + v.status().ToString());
    acked.lo = static_cast<int64_t>(v.value());
    acked.hi = acked.lo - 1;
  } else {
    Result<SequenceGenerator::Block> b = SequenceGenerator::DecodeBlock(r.outcome.data);
    if (!b.ok()) return host_->checker().Fail("undecodable block: " + b.status().ToString());
    if (b.value().count != op_->count || b.value().first == 0) {
      os << "client " << client_id() << " asked for " << op_->count << " numbers, got "
         << b.value().count << " from " << b.value().first;
      return host_->checker().Fail(os.str());
    }
    acked.lo = static_cast<int64_t>(b.value().first);
    acked.hi = acked.lo + static_cast<int64_t>(b.value().count) - 1;
    acked_sequence_ = op_->sequence;
  }
  host_->trace().Fold({0xAC, client_id(), op_->op_id, static_cast<uint64_t>(acked.lo)});
  os << "acked op " << op_->op_id << " from node " << from << ": "
     << (op_->is_read ? "next=" : "first=") << acked.lo << " (slot " << r.slot
     << (r.duplicate ? ", duplicate" : "") << ")";
  Log(os.str());
  host_->checker().OnAck(acked);
  if (IsNode(from)) leader_guess_ = from;
  op_.reset();
  resend_at_ms_ = 0;
  next_op_ms_ = host_->now() + host_->rng().Uniform(0, kThinkMaxMs);
}

void Client::Drain(int ops) {
  draining_ = true;
  drain_ops_left_ = ops;
}

std::string Client::Describe() const {
  std::ostringstream os;
  os << "client " << client_id();
  if (!op_) {
    os << (done() ? " done" : " idle") << ", " << drain_ops_left_ << " ops left";
    return os.str();
  }
  os << " waits on op " << op_->op_id << (op_->is_read ? " (read)" : " (next)") << " seq "
     << op_->sequence << " sent@" << op_->sent_ms << "ms, " << op_->attempts
     << " attempts, target node " << op_->target;
  return os.str();
}

}  // namespace ballot::sim
