/* The corvid command-line tool: global options and dispatch to subcommands. */
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/buf.h"
#include "tools/corvid/cli.h"

struct subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct subcommand subcommands[] = {
    {"certs", certs_main, certs_summary}, {"cluster", cluster_main, cluster_summary},
    {"login", login_main, login_summary}, {"logout", logout_main, logout_summary},
    {"pki", pki_main, pki_summary},       {"admin-channel", admin_main, admin_summary},
};
#define N_SUBCOMMANDS (sizeof subcommands / sizeof subcommands[0])

static void usage(FILE *out)
{
    fprintf(out, "usage: corvid [--help] <command> [<args>]\n\n"
                 "Corvid's command-line tool.\n\n"
                 "Commands:\n");
    for (size_t i = 0; i < N_SUBCOMMANDS; i++)
        fprintf(out, "  %-14s %s\n", subcommands[i].name, subcommands[i].summary);
    fprintf(out,
            "\nRun 'corvid <command> --help' for a command's options. `certs`, `cluster`,\n"
            "`login` and `logout` talk to a running cluster and share global options (--url,\n"
            "--cert, --ca-file, --json, ...; or CORVID_URL, CORVID_CERT, CORVID_CA_FILE): see\n"
            "'corvid certs --help'.\n"
            "Exit status: 0 success; 1 failure or refused by the server; 2 usage error;\n"
            "3 cannot connect to any node; 4 TLS or certificate problem.\n");
}

int main(int argc, char **argv)
{
    setlocale(LC_CTYPE, ""); /* column widths of UTF-8 names in tables */
    /* Parsed and built JSON holds secrets (passwords, two-factor keys), in jansson's own copies
     * too: every block it frees is wiped first, as in the node. */
    json_set_alloc_funcs(malloc, cmn_free_wiped);
    argv = cli_hoist_globals(argc, argv);
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    for (size_t i = 0; i < N_SUBCOMMANDS; i++)
        if (strcmp(cmd, subcommands[i].name) == 0)
            return subcommands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "corvid: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return CLI_USAGE;
}
