# cmake -DINPUT=page/index.html -DOUTPUT=page.cc -P embed_page.cmake
# Writes a C++ file defining lvs::gateway::PageHtml() from the page's bytes.
file(READ ${INPUT} hex HEX)
string(LENGTH "${hex}" hex_len)
math(EXPR size "${hex_len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){32})" "\\1\n" bytes "${bytes}")
file(WRITE ${OUTPUT}
"// Generated from gateway/page/index.html by embed_page.cmake; do not edit.
#include \"gateway/page.h\"

namespace lvs::gateway {
namespace {
const unsigned char kPage[] = {\n${bytes}\n0};
}  // namespace

std::string_view PageHtml() { return std::string_view(reinterpret_cast<const char*>(kPage), ${size}); }

}  // namespace lvs::gateway
")
