/*
 * api.h -- the status page, its JSON API (/api/v1/) and Prometheus
 * metrics (/metrics), served read-only from the master's state.
 */
#ifndef QN_MAPI_H
#define QN_MAPI_H

#include "http.h"

/* The HTTP server's handler for a GET (http.h's qn_http_fn); ctx is the
 * master. It changes nothing. */
void qn_api_on_http(void *ctx, const qn_http_req *req, qn_http_reply *out);

#endif
