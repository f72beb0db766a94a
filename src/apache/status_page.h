// The HTML view of SetHandler wsbridge-status: a small page shell and its
// script, style sheet and icon, compiled into the module (status_page.cpp
// holds them as raw string literals), so the page works wherever the handler
// is mounted (any vhost, <Location> or .htaccess) without files under a
// document root. The page loads everything from its own URL: ?asset=NAME for
// the assets and ?format=json for the figures it polls.
#pragma once
#include <string_view>

namespace wsb {

struct StatusAsset {
  std::string_view name;     // as in ?asset=NAME
  const char* content_type;  // with charset for text
  std::string_view body;
};

// The HTML shell, served for ?format=html or an Accept that prefers HTML.
const StatusAsset& status_page_html();

// status-extra.js (status_page_extra.cpp): the panels for the backend
// bridge, the capacity and the Pusher webhooks, drawn from the figures
// status.js hands it with a "wsb:status" event after each poll.
StatusAsset status_page_extra_script();

// status.js, status-extra.js, status.css or favicon.svg; nullptr for any
// other name.
const StatusAsset* status_page_asset(std::string_view name);

}  // namespace wsb
