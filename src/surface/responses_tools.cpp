// The Responses API's tools in pivot form: function tools as they are, the functions of a
// namespace tool (Codex's MCP servers) flattened to one chat function each
// ("<namespace>__<name>", split again in the answer), and tool_choice.
//
// A web_search tool (web_search, web_search_preview and their dated versions) is dropped:
// Codex offers it on every turn, and a model reached through chat completions answers without
// searching, as it would if it chose not to search (LiteLLM drops it likewise for providers
// without web search). Forcing it (tool_choice naming it) is refused, as is every other tool
// that OpenAI's servers run (file_search, code_interpreter, mcp, image_generation, computer
// use, shell, ...) and custom (free-form) tools: 400 unsupported_parameter naming the tool.

#include "responses_detail.hpp"

#include <algorithm>
#include <initializer_list>
#include <set>

namespace michi::surface::responses::detail {
namespace {

bool one_of(std::string_view v, std::initializer_list<std::string_view> set) {
    return std::find(set.begin(), set.end(), v) != set.end();
}

// OpenAI's hosted web search, in any of its versions.
bool is_web_search(std::string_view type) { return type.rfind("web_search", 0) == 0; }

json chat_function(const json& tool, const std::string& where, const std::string& name,
                   const std::string& preamble) {
    json fn = {{"name", name}};
    std::string description = preamble;
    if (const json* d = field(tool, "description"); d != nullptr && d->is_string()) {
        description += (description.empty() ? "" : "\n\n") + d->get<std::string>();
    }
    if (!description.empty()) {
        fn["description"] = std::move(description);
    }
    if (const json* params = field(tool, "parameters")) {
        if (!params->is_object()) {
            invalid("parameters must be a JSON Schema object", where + ".parameters");
        }
        fn["parameters"] = *params;
    }
    if (const json* strict = field(tool, "strict")) {
        if (!strict->is_boolean()) {
            invalid("strict must be a boolean", where + ".strict");
        }
        fn["strict"] = *strict;
    }
    return {{"type", "function"}, {"function", std::move(fn)}};
}

std::string required_name(const json& tool, const std::string& where) {
    std::string name = string_field(tool, "name");
    if (name.empty()) {
        invalid("a tool needs a name", where + ".name");
    }
    return name;
}

[[noreturn]] void refuse_tool(const std::string& type, const std::string& where) {
    if (type == "custom") {
        unsupported("custom tools (free-form input) are not supported for this model; declare "
                    "a function tool instead",
                    where);
    }
    unsupported("the tool type \"" + type +
                    "\" is run by OpenAI's Responses API itself; this model is reached through "
                    "the chat completions API, which cannot run it",
                where);
}

} // namespace

json map_tools(const json& req) {
    json out = json::array();
    const json* tools = field(req, "tools");
    if (tools == nullptr) {
        return out;
    }
    if (!tools->is_array()) {
        invalid("tools must be an array", "tools");
    }
    std::set<std::string, std::less<>> names;
    const auto add = [&](json fn, const std::string& where) {
        if (!names.insert(fn["function"]["name"].get<std::string>()).second) {
            invalid("two tools go by the name \"" + fn["function"]["name"].get<std::string>() +
                        "\"",
                    where);
        }
        out.push_back(std::move(fn));
    };
    for (std::size_t i = 0; i < tools->size(); ++i) {
        const json& tool = (*tools)[i];
        const std::string where = at("tools", i);
        const std::string type = string_field(tool, "type");
        if (type == "function") {
            add(chat_function(tool, where, required_name(tool, where), ""), where);
        } else if (type == "namespace") {
            const std::string ns = required_name(tool, where);
            const json* members = field(tool, "tools");
            if (members == nullptr || !members->is_array()) {
                invalid("a namespace needs an array of tools", where + ".tools");
            }
            const std::string preamble = string_field(tool, "description");
            for (std::size_t j = 0; j < members->size(); ++j) {
                const json& member = (*members)[j];
                const std::string member_at = at(where + ".tools", j);
                const std::string member_type = string_field(member, "type");
                if (member_type != "function") {
                    refuse_tool(member_type, member_at);
                }
                add(chat_function(member, member_at,
                                  flat_name(ns, required_name(member, member_at)), preamble),
                    member_at);
            }
        } else if (is_web_search(type)) {
            continue; // dropped (see the top of this file)
        } else {
            refuse_tool(type, where);
        }
    }
    return out;
}

// tool_choice, applied to the chat tools (allowed_tools narrows them).
void map_tool_choice(const json& req, json& tools, json& out) {
    const json* choice = field(req, "tool_choice");
    if (choice == nullptr) {
        return;
    }
    if (choice->is_string()) {
        const std::string mode = choice->get<std::string>();
        if (!one_of(mode, {"auto", "none", "required"})) {
            invalid("tool_choice must be auto, none, required or a tool", "tool_choice");
        }
        out["tool_choice"] = mode;
        return;
    }
    const std::string type = string_field(*choice, "type");
    if (type == "function") {
        std::string name = string_field(*choice, "name");
        if (name.empty()) {
            invalid("tool_choice of type function needs a name", "tool_choice.name");
        }
        if (const std::string ns = string_field(*choice, "namespace"); !ns.empty()) {
            name = flat_name(ns, name);
        }
        out["tool_choice"] = {{"type", "function"}, {"function", {{"name", std::move(name)}}}};
    } else if (type == "allowed_tools") {
        const std::string mode = string_field(*choice, "mode");
        const json* allowed = field(*choice, "tools");
        if (!one_of(mode, {"auto", "required"}) || allowed == nullptr || !allowed->is_array()) {
            invalid("allowed_tools needs mode auto or required and an array of tools",
                    "tool_choice");
        }
        std::set<std::string, std::less<>> keep;
        for (std::size_t i = 0; i < allowed->size(); ++i) {
            const json& t = (*allowed)[i];
            if (string_field(t, "type") != "function") {
                refuse_tool(string_field(t, "type"), at("tool_choice.tools", i));
            }
            const std::string ns = string_field(t, "namespace");
            keep.insert(ns.empty() ? string_field(t, "name")
                                   : flat_name(ns, string_field(t, "name")));
        }
        json narrowed = json::array();
        for (json& t : tools) {
            if (keep.count(t["function"]["name"].get<std::string>()) != 0) {
                narrowed.push_back(std::move(t));
            }
        }
        tools = std::move(narrowed);
        out["tool_choice"] = mode;
    } else if (type.empty()) {
        invalid("tool_choice must be auto, none, required or a tool", "tool_choice");
    } else {
        refuse_tool(type, "tool_choice");
    }
}

} // namespace michi::surface::responses::detail
