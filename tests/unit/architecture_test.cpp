// The house rules a newcomer relies on, checked on the source tree itself: modules (the
// folders under src/ and include/michi/) depend on each other one way only, nothing but the
// composition root includes app/, provider types are told apart only by the providers and the
// config, and no source file outgrows one job.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <algorithm>
#include <functional>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

struct source_file {
    std::string path;   // relative to the repository
    std::string module; // its folder under src/ or include/michi/
    std::string text;
};

std::vector<source_file> sources() {
    std::vector<source_file> out;
    const fs::path root(MICHI_SOURCE_DIR);
    for (const auto* base : {"src", "include/michi"}) {
        for (const auto& entry : fs::recursive_directory_iterator(root / base)) {
            const auto ext = entry.path().extension();
            if (!entry.is_regular_file() || (ext != ".cpp" && ext != ".hpp")) {
                continue;
            }
            const auto rel = fs::relative(entry.path(), root / base);
            std::ifstream in(entry.path());
            std::stringstream text;
            text << in.rdbuf();
            out.push_back(
                {fs::relative(entry.path(), root).string(), rel.begin()->string(), text.str()});
        }
    }
    return out;
}

// module -> the modules it includes headers of, with one file that does it.
std::map<std::string, std::map<std::string, std::string>> module_graph() {
    static const std::regex include(R"re(#include "michi/([a-z_]+)/)re");
    std::map<std::string, std::map<std::string, std::string>> graph;
    for (const auto& f : sources()) {
        graph[f.module];
        for (std::sregex_iterator it(f.text.begin(), f.text.end(), include), end; it != end; ++it) {
            const std::string to = (*it)[1];
            if (to != f.module) {
                graph[f.module].emplace(to, f.path);
            }
        }
    }
    return graph;
}

TEST(ArchitectureTest, OnlyTheCompositionRootIncludesApp) {
    for (const auto& [from, edges] : module_graph()) {
        if (from == "app") {
            continue;
        }
        const auto it = edges.find("app");
        EXPECT_TRUE(it == edges.end()) << it->second << " (module " << from << ") includes app/";
    }
}

TEST(ArchitectureTest, ModulesDependOnEachOtherOneWayOnly) {
    const auto graph = module_graph();
    // A depth-first walk; a module met again while still on the path closes a cycle.
    std::map<std::string, int> state; // 0 unseen, 1 on the path, 2 done
    std::vector<std::string> path;
    std::function<void(const std::string&)> visit = [&](const std::string& m) {
        state[m] = 1;
        path.push_back(m);
        if (const auto it = graph.find(m); it != graph.end()) {
            for (const auto& [to, file] : it->second) {
                if (state[to] == 1) {
                    std::string cycle;
                    for (auto p = std::find(path.begin(), path.end(), to); p != path.end(); ++p) {
                        cycle += *p + " -> ";
                    }
                    ADD_FAILURE() << "module cycle: " << cycle << to << " (" << file << ")";
                } else if (state[to] == 0) {
                    visit(to);
                }
            }
        }
        path.pop_back();
        state[m] = 2;
    };
    for (const auto& [m, edges] : graph) {
        if (state[m] == 0) {
            visit(m);
        }
    }
}

TEST(ArchitectureTest, ProviderTypesAreToldApartOnlyByProvidersAndConfig) {
    for (const auto& f : sources()) {
        if (f.module == "providers" || f.module == "config") {
            continue;
        }
        EXPECT_EQ(f.text.find("provider_type::"), std::string::npos)
            << f.path << " tells provider types apart: that belongs to an adapter";
    }
}

TEST(ArchitectureTest, NoSourceFileOver600Lines) {
    for (const auto& f : sources()) {
        if (!f.path.ends_with(".cpp")) {
            continue;
        }
        const auto lines = std::count(f.text.begin(), f.text.end(), '\n');
        EXPECT_LE(lines, 600) << f.path << " has " << lines << " lines: split it by job";
    }
}

} // namespace
