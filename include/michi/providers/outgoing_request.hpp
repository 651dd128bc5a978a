#pragma once
// One upstream request as it goes on the wire: the head ("POST … HTTP/1.1", the fields and
// the blank line) and the body. Its strings come from, and go back to, the worker's pool.

#include "michi/core/string_pool.hpp"

#include <string>
#include <utility>

namespace michi::providers {

class outgoing_request {
public:
    explicit outgoing_request(string_pool* pool = nullptr) : pool_(pool) {
        if (pool_ != nullptr) {
            head = pool_->take();
            body = pool_->take();
        }
    }
    outgoing_request(outgoing_request&& o) noexcept
        : head(std::move(o.head)), body(std::move(o.body)), pool_(o.pool_) {}
    outgoing_request& operator=(outgoing_request&&) = delete;
    outgoing_request(const outgoing_request&) = delete;
    ~outgoing_request() { recycle(); }

    // Once sent: a stream need not hold its request (often the longest part of what a stream
    // keeps) while it lasts. The strings are left empty.
    void recycle() {
        for (auto* s : {&head, &body}) {
            if (pool_ != nullptr) {
                pool_->give(*s);
            } else {
                std::string().swap(*s);
            }
        }
    }

    std::string head;
    std::string body;

private:
    string_pool* pool_;
};

} // namespace michi::providers
