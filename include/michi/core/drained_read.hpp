#pragma once
// Reads that tell Asio's epoll reactor when they emptied the socket.
//
// Asio reads a socket speculatively: an async_read_some first tries recv() and waits for
// epoll only when that fails. So the read of an upstream's answer, which follows the
// request just written, is mostly a recv() failing with EAGAIN before the wait (0.67 a
// proxied request in the benchmark).
//
// A read into a drained_read_buffer returns Asio's done_and_exhausted status when it comes
// back short (fewer bytes than asked for: the receive queue is empty), the status Asio's
// own read gives at end of stream. The reactor then skips the recv() of the next read and
// waits for epoll, until an event for the socket re-enables the attempt
// (descriptor_state::perform_io). Data that arrives later raises that event, so no byte is
// missed.
//
// What a short read does not prove: that the peer's FIN is not queued behind the bytes
// (one event reports both, recv() returns the bytes and the end of stream waits for the
// next call). nginx tells the two apart by EPOLLRDHUP, which Asio does not register. So
// tcp_stream (below) skips the attempt only for the first read after a write, where the
// peer is expected to answer what was just sent; any other read after a short one tries
// recv() itself first, as Asio would have. A peer that closed right behind its last answer
// on a kept-alive connection answers the next request with a reset, which the upstream
// client takes as a reused connection failing before any response byte (tried again on a
// fresh one).
//
// This reaches into Asio's detail namespace, so it is compiled only against the Asio it
// was written for (Boost 1.81, Debian 12's) on epoll; anywhere else reads are Asio's own.

#include <boost/asio/buffer.hpp>
#include <boost/asio/detail/config.hpp>
#include <boost/version.hpp>

namespace michi {

// One buffer, read by a single recv().
struct drained_read_buffer {
    boost::asio::mutable_buffer buffer;

    const boost::asio::mutable_buffer* begin() const noexcept { return &buffer; }
    const boost::asio::mutable_buffer* end() const noexcept { return &buffer + 1; }
};

// The first non-empty buffer of a sequence (empty when all are): a read_some may fill
// less than the whole sequence.
template <class MutableBuffers>
drained_read_buffer first_buffer(const MutableBuffers& buffers) {
    auto it = boost::asio::buffer_sequence_begin(buffers);
    const auto end = boost::asio::buffer_sequence_end(buffers);
    for (; it != end; ++it) {
        boost::asio::mutable_buffer b(*it);
        if (b.size() != 0) {
            return drained_read_buffer{b};
        }
    }
    return drained_read_buffer{};
}

} // namespace michi

#if defined(BOOST_ASIO_HAS_EPOLL) && !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT) &&               \
    BOOST_VERSION / 100 == 1081
#define MICHI_DRAINED_READS 1

// (Through the socket, which brings in the operation with everything it needs.)
#include <boost/asio/basic_stream_socket.hpp>

namespace boost::asio::detail {

template <>
class reactive_socket_recv_op_base<michi::drained_read_buffer> : public reactor_op {
public:
    reactive_socket_recv_op_base(const boost::system::error_code& success_ec, socket_type socket,
                                 socket_ops::state_type state,
                                 const michi::drained_read_buffer& buffers,
                                 socket_base::message_flags flags, func_type complete_func)
        : reactor_op(success_ec, &reactive_socket_recv_op_base::do_perform, complete_func),
          socket_(socket), state_(state), buffer_(buffers.buffer), flags_(flags) {}

    static status do_perform(reactor_op* base) {
        auto* o = static_cast<reactive_socket_recv_op_base*>(base);
        const bool stream = (o->state_ & socket_ops::stream_oriented) != 0;
        if (!socket_ops::non_blocking_recv1(o->socket_, o->buffer_.data(), o->buffer_.size(),
                                            o->flags_, stream, o->ec_, o->bytes_transferred_)) {
            return not_done; // would block: wait for epoll
        }
        if (stream && (o->bytes_transferred_ == 0 ||
                       (!o->ec_ && o->bytes_transferred_ < o->buffer_.size()))) {
            return done_and_exhausted;
        }
        return done;
    }

private:
    socket_type socket_;
    socket_ops::state_type state_;
    mutable_buffer buffer_;
    socket_base::message_flags flags_;
};

} // namespace boost::asio::detail

#endif
