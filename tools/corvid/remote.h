/* What `corvid certs` and `corvid cluster` share: the global options, the client certificate,
 * calls to the nodes with every failure turned into an exit code and a clear message, and human
 * output (aligned tables, local dates, colours on a terminal). */
#ifndef CORVID_TOOLS_REMOTE_H
#define CORVID_TOOLS_REMOTE_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "ca/certfile.h"
#include "ca/ca.h"
#include "tools/corvid/http_client.h"

/* getopt_long codes of the global options (above any short option character). */
enum cli_global_code {
    OPT_URL = 1000,
    OPT_CERT,
    OPT_KEY,
    OPT_PASSWORD_FILE,
    OPT_CA_FILE,
    OPT_INSECURE,
    OPT_JSON,
    OPT_TIMEOUT,
    OPT_VERBOSE,
    OPT_HELP,
    OPT_LOCAL_BASE, /* commands number their own options from here */
};

/* Put at the end of every remote command's option array (before the terminating zero entry). */
#define CLI_GLOBAL_OPTIONS                                                                         \
    {"url", required_argument, NULL, OPT_URL}, {"cert", required_argument, NULL, OPT_CERT},        \
        {"key", required_argument, NULL, OPT_KEY},                                                 \
        {"password-file", required_argument, NULL, OPT_PASSWORD_FILE},                             \
        {"ca-file", required_argument, NULL, OPT_CA_FILE},                                         \
        {"insecure", no_argument, NULL, OPT_INSECURE}, {"json", no_argument, NULL, OPT_JSON},      \
        {"timeout", required_argument, NULL, OPT_TIMEOUT},                                         \
        {"verbose", no_argument, NULL, OPT_VERBOSE},                                               \
    {                                                                                              \
        "help", no_argument, NULL, OPT_HELP                                                        \
    }

/* The global options, for every remote command's --help. */
extern const char cli_global_help[];

/* What the examples of every --help assume, and a command's help followed by it and the global
 * options. */
extern const char cli_env_example[];
void cli_print_help(const char *help);

/* A group of subcommands (`corvid certs …`, `corvid cluster …`). */
struct cli_cmd {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};
struct cli_group {
    const char *name;     /* "certs" */
    const char *about;    /* the paragraph after the usage line */
    const char *examples; /* example lines */
    const struct cli_cmd *cmds;
    size_t n;
};
/* Runs argv[1] of the group (argv[0] is the group's name), or prints the group's usage. */
int cli_group_main(const struct cli_group *g, int argc, char **argv);

/* One run of a remote command. Strings in the option fields are borrowed from argv/environ. */
struct cli {
    const char *urls[HC_MAX_URLS];
    size_t n_urls;
    const char *cert_path, *key_path, *password_file, *ca_file;
    bool insecure, json, verbose, help;
    int timeout_s;

    bool color;    /* stdout is a terminal and NO_COLOR is unset */
    bool progress; /* stderr is a terminal */
    X509 *cert;    /* owned */
    EVP_PKEY *key; /* owned */
    struct ca_cert_list chain;
    struct hc_client hc;
    bool open;
    char *env_urls; /* owned copy of CORVID_URL, split in place */
};

void cli_init(struct cli *c);
/* Handles one getopt_long result: 1 when opt was a global option (taken), 0 when it is not one,
 * -1 for a bad value (message printed: exit CLI_USAGE). */
int cli_global_opt(struct cli *c, int opt, const char *arg);
/* Applies CORVID_URL, CORVID_CERT, CORVID_CA_FILE where no option was given, loads the client
 * certificate (asking for its password on a terminal when none is given and it needs one) and
 * sets up TLS. Connects to nothing yet. Returns CLI_OK, or an exit code after printing why. */
int cli_open(struct cli *c);
void cli_fini(struct cli *c);
/* The common start of a command once its options are parsed: prints the help and returns -1
 * with --help, otherwise cli_open. */
int cli_open_or_help(struct cli *c, const char *help);

/* In a command's getopt_long loop: takes a global option (continue), or on a bad value releases
 * c and returns on_error (the command's usage error). A brace block, not do-while(0): its
 * `continue` must reach the option loop. */
#define CLI_PARSE_GLOBAL(c, o, on_error)                                                           \
    {                                                                                              \
        int g_ = cli_global_opt(&(c), (o), optarg);                                                \
        if (g_ < 0) {                                                                              \
            cli_fini(&(c));                                                                        \
            return (on_error);                                                                     \
        }                                                                                          \
        if (g_ > 0)                                                                                \
            continue;                                                                              \
    }

/* After the options: cli_open_or_help, returning from the command (with c released) on --help
 * (exit 0) or failure. */
#define CLI_START(c, help)                                                                         \
    do {                                                                                           \
        int s_ = cli_open_or_help(&(c), (help));                                                   \
        if (s_ != CLI_OK) {                                                                        \
            cli_fini(&(c));                                                                        \
            return s_ < 0 ? CLI_OK : s_;                                                           \
        }                                                                                          \
    } while (0)

/* A string member of a JSON object, "" when absent. */
const char *cli_str(json_t *o, const char *key);

/* Request flags. */
#define CLI_NO_RESEND 1u /* never send twice (a generated key would be lost) */
#define CLI_QUIET_404 2u /* a 404 is returned as CLI_FAILURE without printing */
#define CLI_SECRET    4u /* the answer holds a secret (a key): its body is wiped when freed */

/* Sends one request to the cluster (failing over across the URLs). body may be NULL (borrowed).
 * Writes carry a fresh raft-request-id, so that a write whose connection broke can be sent again
 * to the next node without being applied twice. label, when not NULL, is shown with a spinner on
 * a terminal while waiting. Returns CLI_OK with *out filled (caller: hc_response_fini) for a 2xx
 * answer; otherwise prints the problem — the server's message and status, or why no node could
 * be reached — and returns its exit code with *out released. */
int cli_request(struct cli *c, const char *method, const char *path, json_t *body, unsigned flags,
                const char *label, struct hc_response *out);
/* GET path, expecting a JSON object (owned by the caller on success). */
int cli_get_json(struct cli *c, const char *path, unsigned flags, json_t **out);
/* The same against one node (for asking every node). Prints nothing: returns 0 or an exit code
 * with the reason in errmsg. */
int cli_get_json_at(struct cli *c, const char *url, const char *path, json_t **out, char *errmsg);

/* The exit code that a CMN_E* failure of the HTTP client means. */
int cli_exit_for(int hc_error);

/* Prints JSON to stdout, indented. Takes no reference. */
void cli_print_json(json_t *v);

/* ---- input files and passwords ---- */

/* Reads a whole file of at most max bytes into out (cleared first). Prints why on failure and
 * returns -1. */
int cli_read_file(const char *path, size_t max, struct cmn_buf *out);
/* The first line of a password file, into a secret buffer (initialised here). */
int cli_read_password_file(const char *path, struct cmn_buf *out);
/* {"Certificate": base64 of the file at path, "Password": the first line of pw_file (may be
 * NULL: "")}, the body of the replacement endpoints, into *out: CLI_OK, or an exit code after
 * saying why. */
int cli_pfx_body(const char *path, const char *pw_file, json_t **out);
/* Asks on the terminal with echo off, when stdin is a terminal. false when it is not one or the
 * answer is empty. out is initialised here as a secret buffer. */
bool cli_prompt_password(const char *prompt, struct cmn_buf *out);

/* Certificates read from a .pfx, .pem, .crt or .cer file. */
/* Loads path with ca_certfile_parse (PKCS#12 recognised by content) into f (the caller's;
 * release with ca_certfile_fini). password may be NULL; when the file needs a
 * password and the one given (or none) does not open it, the user is asked on a terminal.
 * key_path, when not NULL, names a separate PEM key file. With want_key a private key is
 * required. Failures are printed with `what` ("--cert", "FILE"), with pw_hint when a password
 * was missing, and return fail_code. */
int cli_certfile_load(struct ca_certfile *f, const char *path, const char *key_path,
                      const char *password, bool want_key, const char *what, const char *pw_hint,
                      int fail_code);

/* Writes a file created with mode from the start; refuses to replace an existing file unless
 * force. "-" writes to stdout. Prints why and returns -1 on failure. */
int cli_write_file(const char *path, const void *data, size_t len, int mode, bool force);
/* Creates dir (and missing parents) with mode 0700. */
int cli_make_dirs(const char *dir);

/* ---- output ---- */

/* Parses RavenDB's ISO 8601 dates ("2025-01-02T10:00:00.0000000Z"); false when it is not one. */
bool cli_parse_time(const char *s, int64_t *out);
/* Local time with the zone: "2025-01-02 11:00 CET". */
void cli_fmt_local(int64_t t, char *out, size_t n);
/* "in 3 days", "2 hours ago", ... */
void cli_fmt_relative(int64_t t, int64_t now, char *out, size_t n);
/* Copies s with control characters (C0, DEL, C1) replaced by '?': names come from other users. */
void cli_safe_text(const char *s, char *out, size_t n);
/* Permissions object as "db1: ReadWrite, db2: Read"; "" when empty. */
void cli_fmt_perms(json_t *perms, char *out, size_t n);

#define CLI_RED    "\033[31m"
#define CLI_YELLOW "\033[33m"
#define CLI_GREEN  "\033[32m"
#define CLI_BOLD   "\033[1m"
#define CLI_DIM    "\033[2m"
#define CLI_RESET  "\033[0m"

/* An aligned table; cells are copied (made safe for a terminal). */
struct cli_table {
    size_t ncol, nrow;
    const char *const *head; /* borrowed */
    char **cell;             /* nrow * ncol, owned */
    const char **color;      /* nrow * ncol, static strings or NULL */
};
void cli_table_init(struct cli_table *t, size_t ncol, const char *const *head);
int cli_table_add(struct cli_table *t, const char *const *cells) CMN_MUST_CHECK;
void cli_table_color(struct cli_table *t, size_t row, size_t col, const char *ansi);
void cli_table_print(const struct cli_table *t, FILE *out, bool color);
void cli_table_fini(struct cli_table *t);

/* Moves global options given before the command (`corvid --url U certs list`) to the end of the
 * command line (`corvid certs list --url U`), where the command's getopt finds them. Returns argv
 * or a new array that lives until exit. */
char **cli_hoist_globals(int argc, char **argv);

#endif
