# Turns one file into a C++ function returning its bytes: the shipped price table lives inside
# the binary, so the gateway needs no file at run time.
#   cmake -DOUT=<file.cpp> -DIN=<file> -DNAMESPACE=<ns> -DFUNCTION=<name> -P embed_text.cmake
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" hexlen)
math(EXPR size "${hexlen} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
get_filename_component(name "${IN}" NAME)
set(body "// Generated from ${name}: do not edit.\n#include <string_view>\n\nnamespace ${NAMESPACE} {\n")
string(APPEND body "namespace {\nconst unsigned char data[] = {${bytes}0x00};\n} // namespace\n\n")
string(APPEND body "std::string_view ${FUNCTION}();\nstd::string_view ${FUNCTION}() {\n")
string(APPEND body "    return std::string_view(reinterpret_cast<const char*>(data), ${size});\n}\n\n")
string(APPEND body "} // namespace ${NAMESPACE}\n")
file(WRITE "${OUT}.tmp" "${body}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
