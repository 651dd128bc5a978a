// michi-gateway: thin entry point; everything lives in the core library.
#include "michi/app/cli.hpp"

int main(int argc, char** argv) { return michi::run_cli(argc, argv); }
