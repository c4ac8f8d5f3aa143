/* The Raft transport: canonical/raft's raft_uv_transport over TLS 1.3 with mutual X.509
 * authentication by node certificates. Raft sees socketpair streams; this module pumps them
 * through TLS connections on the same loop. The listening port also carries the proposal
 * forwarding channel (raft/forward.h), told apart by the preamble.
 *
 * A peer is handed to Raft only when `trust` accepts its certificate for the node id it claims
 * (inbound) or that Raft asked for (outbound). */
#ifndef CORVID_RAFT_TRANSPORT_H
#define CORVID_RAFT_TRANSPORT_H

#include <raft.h>
#include <raft/uv.h>

#include "raft/tls.h"

#define RFT_PREAMBLE_RAFT  "CVRAFT01"
#define RFT_PREAMBLE_FWD   "CVFWD001"
#define RFT_HANDSHAKE_MS   5000
#define RFT_MAX_HANDSHAKES 64

struct rft_transport;

/* 0 when cert may act as node `id`; otherwise a code and a reason in errmsg. */
typedef int (*rft_trust_fn)(void *ctx, X509 *cert, raft_id id, char *errmsg);
/* A channel: an authenticated TLS byte stream between two nodes beside Raft's own streams,
 * used for proposal forwarding. The transport owns its memory. */
struct rft_chan;
typedef void (*rft_chan_data_cb)(struct rft_chan *ch, const uint8_t *data, size_t len);
/* status 0: open (outbound only); < 0: failed or closed, and ch is gone after the callback. */
typedef void (*rft_chan_event_cb)(struct rft_chan *ch, int status);
struct rft_chan {
    void *data; /* the user's */
    rft_chan_data_cb on_data;
    rft_chan_event_cb on_event;
    raft_id peer;
};
/* An authenticated inbound channel arrived: set ch->data, on_data and on_event. */
typedef void (*rft_forward_accept_fn)(void *ctx, struct rft_chan *ch);
/* Logging hook: the transport reports refusals here (the node logs them). */
typedef void (*rft_log_fn)(void *ctx, int level, const char *msg);

struct rft_transport_config {
    uv_loop_t *loop;
    SSL_CTX *ctx; /* borrowed; the node's certificate; must outlive the transport */
    rft_trust_fn trust;
    rft_forward_accept_fn forward_accept;
    rft_log_fn log;
    void *cb_ctx;
};

/* Fills t (memset by the caller or not) to be passed to raft_uv_init. */
int rft_transport_init(struct raft_uv_transport *t,
                       const struct rft_transport_config *cfg) CMN_MUST_CHECK;
/* Frees what init allocated; call after raft_close completed (the transport is closed). */
void rft_transport_fini(struct raft_uv_transport *t);
/* Opens a channel to node id at address; ch->on_event reports the outcome. NULL on a
 * synchronous failure. */
struct rft_chan *rft_chan_open(struct raft_uv_transport *t, raft_id id, const char *address,
                               rft_chan_data_cb on_data, rft_chan_event_cb on_event, void *data);
int rft_chan_write(struct rft_chan *ch, const void *data, size_t len) CMN_MUST_CHECK;
size_t rft_chan_backlog(const struct rft_chan *ch);
/* Closes the channel; no callback fires for it afterwards. */
void rft_chan_close(struct rft_chan *ch);

/* Closes every connection authenticated with this certificate thumbprint (revocation). */
void rft_transport_drop_peer(struct raft_uv_transport *t, const char *thumbprint_lower);
/* New connections, both ways, use ctx (borrowed, as cfg->ctx); open ones keep theirs. */
void rft_transport_set_ctx(struct raft_uv_transport *t, SSL_CTX *ctx);

/* Node tag <-> Raft id: "A" = 1, …, "Z" = 26, "AA" = 27*1+1 … (bijective base 26). */
raft_id rft_tag_to_id(const char *tag);
void rft_id_to_tag(raft_id id, char out[8]);

#endif
