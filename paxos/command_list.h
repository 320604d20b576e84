// CommandList: the commands of one slot's value, shared instead of copied.
//
// A value travels from the proposer to the in-flight table, to one Accept per replica, to the
// slot log, to a persist batch and to the applier: each of those used to copy every command
// and its payload. A CommandList is copy-on-write: copies share one immutable vector, and only
// a mutation of a shared list copies it first. Values are built once (by the proposer or a
// decoder) and then only read, so in practice nothing is copied after construction.
//
// Sharing across threads (the persist batch goes to the storage thread) is safe because a
// shared vector is never mutated; the reference count is atomic.
#ifndef BALLOT_PAXOS_COMMAND_LIST_H_
#define BALLOT_PAXOS_COMMAND_LIST_H_

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <utility>
#include <vector>

namespace ballot::paxos {

template <typename T>
class CowList {
 public:
  using value_type = T;
  using const_iterator = typename std::vector<T>::const_iterator;

  CowList() = default;
  CowList(std::initializer_list<T> items)
      : items_(items.size() ? std::make_shared<std::vector<T>>(items) : nullptr) {}
  CowList(std::vector<T> items)  // NOLINT: a vector converts
      : items_(items.empty() ? nullptr : std::make_shared<std::vector<T>>(std::move(items))) {}

  size_t size() const { return items_ ? items_->size() : 0; }
  bool empty() const { return size() == 0; }
  const_iterator begin() const { return Items().begin(); }
  const_iterator end() const { return Items().end(); }
  const T& operator[](size_t i) const { return (*items_)[i]; }
  const T& front() const { return items_->front(); }
  const T& back() const { return items_->back(); }

  // Mutations: the list is made unshared first. There is deliberately no non-const begin() or
  // operator[]: a range-for over a non-const list would silently copy a shared one.
  T& mutable_at(size_t i) { return Mutable()[i]; }
  void push_back(T item) { Mutable().push_back(std::move(item)); }
  void reserve(size_t n) { Mutable().reserve(n); }
  void resize(size_t n) { Mutable().resize(n); }
  void clear() { items_.reset(); }

  friend bool operator==(const CowList& a, const CowList& b) {
    return a.items_ == b.items_ || a.Items() == b.Items();
  }
  friend bool operator==(const CowList& a, const std::vector<T>& b) { return a.Items() == b; }

 private:
  const std::vector<T>& Items() const {
    static const std::vector<T> kEmpty;
    return items_ ? *items_ : kEmpty;
  }
  std::vector<T>& Mutable() {
    if (!items_) {
      items_ = std::make_shared<std::vector<T>>();
    } else if (items_.use_count() > 1) {
      items_ = std::make_shared<std::vector<T>>(*items_);
    }
    return *items_;
  }

  std::shared_ptr<std::vector<T>> items_;  // null: empty
};

}  // namespace ballot::paxos

#endif  // BALLOT_PAXOS_COMMAND_LIST_H_
