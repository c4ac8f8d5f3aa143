/* Free space on DataDir: a node refuses writes before its disk is full, not when it is. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>

#include "common/log.h"
#include "node/core.h"

uint64_t node_disk_reserve(struct node *n)
{
    uint64_t snap = n->rft ? rft_snapshot_bytes(n->rft) : 0;
    uint64_t mem = n->kv ? kv_memtable_bytes(n->kv) : 0;
    return NODE_DISK_RESERVE_BASE + mem + 2 * snap;
}

int node_disk_state(struct node *n, struct node_disk *out)
{
    struct statvfs sv;
    memset(out, 0, sizeof *out);
    out->reserve = node_disk_reserve(n);
    if (statvfs(n->cfg.data_dir, &sv) != 0)
        return CMN_EIO; /* cannot tell: writes are not refused for it */
    out->free = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
    out->low = out->free < out->reserve;
    return 0;
}

static void mib(uint64_t bytes, char *out, size_t cap)
{
    snprintf(out, cap, "%.1f MiB", (double)bytes / (1024.0 * 1024.0));
}

void node_disk_describe(struct node *n, const struct node_disk *d, char *errmsg)
{
    char fr[32], rs[32];
    mib(d->free, fr, sizeof fr);
    mib(d->reserve, rs, sizeof rs);
    cmn_fail(errmsg, CMN_ENOSPACE,
             "node %s: disk full: DataDir %s has %s free (%" PRIu64 " bytes), needs %s (%" PRIu64
             " bytes) in reserve",
             n->cfg.tag, n->data_dir_abs, fr, d->free, rs, d->reserve);
}

/* Logs when DataDir goes below its reserve and when it has room again. */
static void note(struct node *n, const struct node_disk *d)
{
    if (d->low == n->disk_low)
        return;
    n->disk_low = d->low;
    char fr[32], rs[32];
    mib(d->free, fr, sizeof fr);
    mib(d->reserve, rs, sizeof rs);
    if (d->low)
        CMN_ERROR("NODE-DISK",
                  "DataDir %s has %s free, below the %s this node keeps in reserve for its Raft "
                  "log and state store: refusing writes (507) until there is room; reads go on",
                  n->data_dir_abs, fr, rs);
    else
        CMN_INFO("NODE-DISK", "DataDir %s has %s free again (reserve %s): accepting writes",
                 n->data_dir_abs, fr, rs);
}

int node_disk_check(struct node *n, struct node_disk *d, char *errmsg)
{
    struct node_disk tmp;
    if (d == NULL)
        d = &tmp;
    if (node_disk_state(n, d) != 0)
        return 0;
    note(n, d);
    if (!d->low)
        return 0;
    node_disk_describe(n, d, errmsg);
    return CMN_ENOSPACE;
}

void node_disk_watch(struct node *n)
{
    struct node_disk d;
    if (node_disk_state(n, &d) == 0)
        note(n, &d);
}
