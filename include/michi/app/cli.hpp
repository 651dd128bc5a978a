#pragma once
// The command line of michi-gateway (CONTRACT §1): run, --check, keygen, --version, --help.

namespace michi {

int run_cli(int argc, char** argv);

} // namespace michi
