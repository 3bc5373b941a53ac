// The web page of lvs-gateway (gateway/page/index.html, embedded in the
// binary at build time by embed_page.cmake: no files or network at run time).
//
// Thread-safety: returns immutable static data.
#ifndef LVS_GATEWAY_PAGE_H_
#define LVS_GATEWAY_PAGE_H_

#include <string_view>

namespace lvs::gateway {

// The HTML of `/` (scripts and styles inline).
std::string_view PageHtml();

}  // namespace lvs::gateway

#endif  // LVS_GATEWAY_PAGE_H_
