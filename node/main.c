/* corvid-node: the Corvid cluster node daemon. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "common/buf.h"
#include "node/admin.h"
#include "node/api.h"
#include "node/node.h"

static const char usage[] =
    "usage: corvid-node --config FILE\n"
    "\n"
    "Runs one Corvid node: Raft over mutual TLS with the other nodes, the replicated trust state\n"
    "in DataDir, and the admin channel (DataDir/admin.sock, see `corvid admin-channel`).\n"
    "Stops cleanly on SIGTERM or SIGINT (a leader hands over leadership first).\n"
    "\n"
    "Configuration keys (JSON, RavenDB's names): ServerUrl, ServerUrl.Tcp, PublicServerUrl,\n"
    "DataDir, Security.Certificate.Path/.Password, Security.ClusterCA.Path/.Password,\n"
    "Security.WellKnownCertificates.Admin, Security.WellKnownIssuers.Admin, Cluster.NodeTag,\n"
    "Cluster.Bootstrap, Cluster.TrustedNodeCertificates.Path, Logs.Level, Logs.AuditPath,\n"
    "Security.TwoFactor.DefaultSessionDurationInMin/.MaxSessionDurationInMin,\n"
    "Cluster.ElectionTimeoutInMs, Cluster.HeartbeatTimeoutInMs, Cluster.SnapshotThreshold,\n"
    "Cluster.SnapshotTrailing, Security.MasterKey.Path (required: the 0600 key file, outside\n"
    "DataDir and the same on every node, that seals the issuing CA key at rest).\n"
    "\n"
    "Example: build/corvid-node --config cluster-configs/local-3node/A.json\n";

/* The dynamic linker's lazy binding saves every vector register on the stack the first time a
 * library function is called through the PLT (_dl_runtime_resolve_xsavec). When that first
 * call comes from code holding a request body in those registers (jansson copying a password),
 * the copy stays on the stack for good. -z now binds only this binary's own calls, not those
 * between libraries, so the node runs itself again, once, with everything bound at load. */
static void bind_now(char **argv)
{
    const char *set = getenv("LD_BIND_NOW");
    if (set != NULL && set[0] != '\0')
        return;
    /* By its own path, not /proc/self/exe: the process keeps its name (ps, pgrep, top). */
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len > 0 && setenv("LD_BIND_NOW", "1", 1) == 0) {
        self[len] = '\0';
        execv(self, argv);
    }
    fprintf(stderr,
            "corvid-node: warning: cannot run again with LD_BIND_NOW=1 (%s): library calls are "
            "bound lazily\n",
            strerror(errno));
}

int main(int argc, char **argv)
{
    bind_now(argv);
    const char *config = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            config = argv[i] + 9;
        } else {
            fprintf(stderr, "corvid-node: unknown argument '%s'\n\n%s", argv[i], usage);
            return 2;
        }
    }
    if (config == NULL) {
        fputs(usage, stderr);
        return 2;
    }
    /* Writes to a socketpair whose peer closed raise SIGPIPE: without this, one node's death
     * kills its peers. */
    signal(SIGPIPE, SIG_IGN);
    /* Owner-only for everything the node creates, the files RocksDB and raft make in DataDir
     * included (RocksDB asks for 0644): the trust state is nobody else's to read. */
    umask(077);
    /* Parsed JSON holds passwords (request bodies, the configuration's certificate passwords),
     * in jansson's own copies too (its lexer's buffer, string values): every block it frees is
     * wiped first. Blocks stay plain malloc blocks, so free() of a json_dumps result is right. */
    json_set_alloc_funcs(malloc, cmn_free_wiped);
    /* The core first, then its rooms: the admin channel and the HTTPS API. Static: after a
     * failed start the node is left as it is (see below), and stays reachable. */
    static struct node *n;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    int rv = node_new(config, &n, errmsg);
    if (rv == 0)
        rv = node_admin_start(n, errmsg);
    if (rv == 0)
        rv = node_api_start(n, errmsg);
    if (rv != 0) {
        fprintf(stderr, "corvid-node: %s\n", errmsg[0] ? errmsg : cmn_strerror(rv));
        /* Handles may already live on the loop: end without tearing them down. */
        return 1;
    }
    int code = node_run(n);
    node_free(n);
    return code;
}
