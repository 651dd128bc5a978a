#pragma once
// A throwaway CA and a server certificate for one DNS name (make_test_certs), in a temp_dir
// removed with them when the test ends.

#include "support/fake_upstream.hpp"
#include "support/temp_dir.hpp"

#include <string>

namespace michi::test {

struct temp_certs {
    explicit temp_certs(const std::string& dns_name = "localhost")
        : dir("michi-certs"), files(make_test_certs(dir.str(), dns_name)) {}
    temp_dir dir;
    tls_files files;
};

} // namespace michi::test
