// A stream turned into the client's API's events: provider events -> pivot chunks (the
// provider's translator) -> OpenAI SSE, Anthropic events for a /v1/messages client, or the
// Responses API's events for a /v1/responses one.

#include "michi/providers/anthropic.hpp"
#include "michi/core/json_parse.hpp"
#include "michi/providers/openai.hpp"
#include "michi/stream/sse.hpp"
#include "michi/surface/responses.hpp"
#include "michi/surface/surface.hpp"

#include <ctime>
#include <optional>
#include <vector>

namespace michi::surface {
namespace {

class translating final : public stream_filter {
public:
    translating(api_kind api, std::unique_ptr<providers::chunk_translator> translator,
                std::string message_id, std::string client_model, std::string_view client_body)
        : api_(api), translator_(std::move(translator)) {
        if (api == api_kind::messages) {
            writer_.emplace(std::move(message_id), std::move(client_model));
        } else if (api == api_kind::responses) {
            const auto request = nlohmann::json::parse(client_body, nullptr, false);
            responses_.emplace(std::move(message_id), std::move(client_model), request,
                               static_cast<std::int64_t>(std::time(nullptr)));
        }
    }

    std::string_view feed(std::string_view in) override {
        out_.clear();
        chunks_.clear();
        if (in.empty()) {
            return {};
        }
        sse_.feed(in, [this](stream::sse_event&& ev) {
            if (!upstream_error_ && !translator_->on_event(ev, chunks_)) {
                upstream_error_ = true;
            }
        });
        for (const auto& chunk : chunks_) {
            content_chars_ += providers::openai::content_chars(chunk);
            add(chunk);
        }
        return out_;
    }
    std::uint64_t events() const noexcept override { return sse_.events(); }
    bool finished() const noexcept override { return translator_->finished(); }
    bool needs_end_event() const noexcept override { return true; }
    std::optional<std::string> failure() const override {
        if (upstream_error_) {
            return "upstream error event: " + translator_->error_message();
        }
        if (sse_.failed()) {
            return "stream error (an event is larger than " +
                   std::to_string(stream::sse_parser::default_max_event_bytes) + " bytes)";
        }
        return std::nullopt;
    }
    std::string_view finish() override {
        // (Into a text of its own: the last feed's view stays valid, as the relay expects.)
        end_.clear();
        if (writer_) {
            writer_->finish(end_);
        } else if (responses_) {
            responses_->finish(end_);
        } else {
            end_.append("data: [DONE]\n\n");
        }
        return end_;
    }
    std::string broken(std::string_view message) const override {
        return responses_ ? responses_->failed_event(message) : broken_event(api_, message);
    }
    const providers::usage_info& usage() const noexcept override { return translator_->usage(); }
    std::size_t content_chars() const noexcept override { return content_chars_; }

private:
    void add(std::string_view chunk) {
        if (!writer_ && !responses_) {
            out_.append("data: ").append(chunk).append("\n\n");
            return;
        }
        const auto j = json_parse::parse_value(chunk);
        if (!j.is_object()) {
            return;
        }
        if (writer_) {
            writer_->on_chunk(j, out_);
        } else {
            responses_->on_chunk(j, out_);
        }
    }

    api_kind api_;
    std::unique_ptr<providers::chunk_translator> translator_;
    std::optional<providers::anthropic::messages_stream_writer> writer_;
    std::optional<responses::stream_writer> responses_;
    stream::sse_parser sse_;
    std::vector<std::string> chunks_;
    std::string out_;
    std::string end_; // what finish() wrote
    std::size_t content_chars_ = 0;
    bool upstream_error_ = false;
};

} // namespace

std::unique_ptr<stream_filter>
translating_filter(api_kind api, std::unique_ptr<providers::chunk_translator> translator,
                   std::string message_id, std::string client_model, std::string_view client_body) {
    return std::make_unique<translating>(api, std::move(translator), std::move(message_id),
                                         std::move(client_model), client_body);
}

} // namespace michi::surface
