/*
 * draincmd.c -- see draincmd.h.
 */
#include "draincmd.h"

#include "client.h"
#include "statusjson.h"
#include "usage.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* One DrainRequest on c; 0 with *reply set, or an exit status (said). */
static int s_ask(qn_client *c, const qn_cli_opts *o, int undrain,
                 Quern__Envelope **reply)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__DrainRequest dr = QUERN__DRAIN_REQUEST__INIT;
    dr.worker_id = (char *)o->positional[0];
    dr.undrain = undrain;
    dr.wait = o->wait;
    dr.deadline_ms = o->deadline_ms;
    dr.wait_ms = QN_DRAINCMD_ASK_MS;
    env.body_case = QUERN__ENVELOPE__BODY_DRAIN_REQUEST;
    env.drain_request = &dr;
    /* A wait is answered within QN_DRAINCMD_ASK_MS: allow for the trip. */
    int timeout =
        o->wait ? QN_DRAINCMD_ASK_MS + QN_CLIENT_CALL_MS : QN_CLIENT_CALL_MS;
    return qn_client_ask(c, &env, QUERN__ENVELOPE__BODY_DRAIN_REPLY, timeout,
                         reply);
}

/* Say where the worker stands; returns the exit status. */
static int s_say(const qn_cli_opts *o, const Quern__DrainReply *r, int undrain)
{
    const char *id = o->positional[0];
    int rc = r->refused ? QN_EXIT_USAGE : r->error[0] ? 1 : 0;
    if (o->json) {
        qn_print_json(stdout,
                      json_pack("{s:s, s:s, s:b, s:s, s:s}", "worker", id,
                                "state", qn_worker_state_name(r->state), "done",
                                r->done, "waits", r->waits, "error", r->error));
    } else if (r->error[0]) {
        fprintf(stderr, "quern: %s\n", r->error);
    } else if (undrain) {
        printf("worker %s is back in service\n", id);
    } else if (r->done) {
        printf("worker %s is drained: it may be stopped\n", id);
    } else {
        printf("worker %s is draining; it waits for %s\n", id,
               r->waits[0] ? r->waits : "nothing");
    }
    return rc;
}

static int s_drain(qn_cli_opts *o, int undrain)
{
    if (o->npositional != 1)
        return qn_usage_fail(undrain ? "usage: quern undrain WORKER"
                                     : "usage: quern drain WORKER [--wait] "
                                       "[--deadline-ms N]");
    qn_client *c = NULL;
    int rc = qn_cli_open(o, &c);
    if (rc != 0)
        return rc;
    char said[512] = "";
    for (;;) {
        Quern__Envelope *reply = NULL;
        rc = s_ask(c, o, undrain, &reply);
        if (rc != 0)
            break;
        const Quern__DrainReply *r = reply->drain_reply;
        if (!o->wait || undrain || r->done || r->error[0]) {
            rc = s_say(o, r, undrain);
            qn_wire_free(reply);
            break;
        }
        if (strcmp(said, r->waits) != 0) {
            fprintf(stderr, "quern: worker %s is draining; it waits for %s\n",
                    o->positional[0], r->waits);
            snprintf(said, sizeof said, "%s", r->waits);
        }
        qn_wire_free(reply);
    }
    qn_client_destroy(&c);
    return rc;
}

int qn_draincmd_drain(qn_cli_opts *o)
{
    return s_drain(o, 0);
}

int qn_draincmd_undrain(qn_cli_opts *o)
{
    return s_drain(o, 1);
}
