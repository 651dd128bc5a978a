#pragma once
// The one result style of the data plane: a value, or the gateway_error that stands in its
// place (std::expected's shape, which C++20 lacks). `result<void>` is "done, or why not".

#include "michi/core/error.hpp"

#include <optional>
#include <utility>
#include <variant>

namespace michi {

template <class T>
class [[nodiscard]] result {
public:
    result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
    result(gateway_error err) : v_(std::in_place_index<1>, std::move(err)) {}

    bool ok() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T* operator->() { return &std::get<0>(v_); }
    const T* operator->() const { return &std::get<0>(v_); }

    gateway_error& error() & { return std::get<1>(v_); }
    const gateway_error& error() const& { return std::get<1>(v_); }

private:
    std::variant<T, gateway_error> v_;
};

template <>
class [[nodiscard]] result<void> {
public:
    result() = default;
    result(gateway_error err) : err_(std::move(err)) {}

    bool ok() const noexcept { return !err_.has_value(); }
    explicit operator bool() const noexcept { return ok(); }

    gateway_error& error() & { return *err_; }
    const gateway_error& error() const& { return *err_; }

private:
    std::optional<gateway_error> err_;
};

// `return ok();` for a result<void>.
inline result<void> ok() { return {}; }

} // namespace michi
