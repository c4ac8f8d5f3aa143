/* `corvid login` and `corvid logout`: the two-factor session of the client certificate on the
 * whole cluster (POST and DELETE /authentication/2fa). The code is read from the terminal or one
 * line of stdin, never from argv or the environment, and nothing is written to disk. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/env.h"
#include "tools/corvid/cli.h"
#include "tools/corvid/remote.h"
#include "tools/corvid/twofactor.h"

const char login_summary[] = "open the two-factor session your certificate needs (asks the code)";
const char logout_summary[] = "end your certificate's two-factor session on the whole cluster";

static const char login_help[] =
    "usage: corvid login [--duration MIN] [global options]\n"
    "\n"
    "Opens the two-factor session that a certificate registered with --two-factor needs: without\n"
    "one every node answers it 428. Asks for the 6-digit code of your authenticator app on the\n"
    "terminal, or reads one line from stdin when that is not a terminal. The code is never taken\n"
    "from the command line or the environment (shell history and ps would keep it). The session\n"
    "holds on every node, for any connection with this certificate (the CLI keeps no cookie),\n"
    "until it expires or `corvid logout`. Nothing is written to disk.\n"
    "\n"
    "Options:\n"
    "  --duration MIN   minutes the session lasts (default: the cluster's\n"
    "                   Security.TwoFactor.DefaultSessionDurationInMin, 120 unless configured;\n"
    "                   at most its MaxSessionDurationInMin)\n"
    "\n"
    "With --json: {\"TwoFactorExpirationDate\", \"SessionDurationInMin\"}.\n"
    "\n"
    "Examples:\n"
    "  corvid login --cert var/local/alice/alice.pfx\n"
    "  corvid login --duration 480\n"
    "  oathtool --totp -b \"$TOTP_KEY\" | corvid login     # a script that holds the key\n";

static const char logout_help[] =
    "usage: corvid logout [global options]\n"
    "\n"
    "Ends the two-factor session of your client certificate on every node (DELETE\n"
    "/authentication/2fa): from then on its requests get 428 until the next `corvid login`.\n"
    "\n"
    "With --json: {\"LoggedOut\": true}.\n"
    "\n"
    "Examples:\n"
    "  corvid logout\n"
    "  corvid logout --cert var/local/alice/alice.pfx\n";

enum { O_DURATION = OPT_LOCAL_BASE, O_CODE };

/* Options and arguments of login (duration not NULL) or logout, then cli_open. A code given on
 * the command line is refused with the reason. Returns CLI_OK, -1 after --help, or an exit
 * code. */
static int start(struct cli *c, int argc, char **argv, const char *help, const char **duration)
{
    static const struct option opts[] = {
        {"duration", required_argument, NULL, O_DURATION},
        /* recognised only to say why they are refused */
        {"code", optional_argument, NULL, O_CODE},
        {"token", optional_argument, NULL, O_CODE},
        {"totp", optional_argument, NULL, O_CODE},
        CLI_GLOBAL_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    static const char no_code[] =
        "corvid: %s takes no code on the command line, where shell history and ps would keep "
        "it: it asks for the code on the terminal, or reads one line of stdin\n";
    const char *cmd = argv[0];
    int o;
    optind = 0;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int g = cli_global_opt(c, o, optarg);
        if (g > 0)
            continue;
        if (g == 0 && o == O_DURATION && duration != NULL) {
            *duration = optarg;
            continue;
        }
        if (g == 0 && o == O_CODE && duration != NULL)
            fprintf(stderr, no_code, cmd);
        else if (g == 0 && o == O_CODE)
            fprintf(stderr, "corvid: %s needs no code\n", cmd);
        else if (g == 0 && o == O_DURATION)
            fprintf(stderr, "corvid: %s has no --duration\n", cmd);
        goto usage;
    }
    if (optind != argc && !c->help) {
        if (duration != NULL)
            fprintf(stderr, no_code, cmd);
        else
            fprintf(stderr, "corvid: %s takes no arguments\n", cmd);
        goto usage;
    }
    int rv = cli_open_or_help(c, help);
    if (rv == CLI_OK && c->cert == NULL) {
        fprintf(stderr,
                "corvid: %s is about your client certificate: give --cert FILE or set "
                "CORVID_CERT\n",
                cmd);
        rv = CLI_USAGE;
    }
    return rv;
usage:
    fprintf(stderr, "Run 'corvid %s --help' for its options.\n", cmd);
    return CLI_USAGE;
}

/* The cluster's session durations (GET /authentication/2fa/configuration, open to any client). */
static int session_limits(struct cli *c, long *dflt, long *max)
{
    json_t *o;
    int rv = cli_get_json(c, "/authentication/2fa/configuration", 0, &o);
    if (rv != CLI_OK)
        return rv;
    json_int_t d = json_integer_value(json_object_get(o, "DefaultTwoFactorSessionDurationInMin"));
    json_int_t m = json_integer_value(json_object_get(o, "MaxTwoFactorSessionDurationInMin"));
    json_decref(o);
    if (d < 1 || m < d || m > 1000000) {
        fprintf(stderr,
                "corvid: %s answered a two-factor configuration without usable session "
                "durations\n",
                c->hc.urls[c->hc.current].base);
        return CLI_NOCONNECT;
    }
    *dflt = (long)d;
    *max = (long)m;
    return CLI_OK;
}

/* The code, from the terminal (with a prompt) when stdin is one, else one line of stdin. */
static int read_code(char code[TF_CODE_DIGITS + 1])
{
    char errmsg[CMN_ERRMSG_SIZE] = "";
    int fd = STDIN_FILENO, tty = -1;
    if (isatty(STDIN_FILENO) && (tty = open("/dev/tty", O_RDWR | O_CLOEXEC)) >= 0)
        fd = tty;
    if (isatty(fd)) {
        static const char prompt[] = "Code from your authenticator app (6 digits): ";
        CMN_IGNORE(write(fd, prompt, sizeof prompt - 1));
    }
    int rv = tf_code_read(fd, code, errmsg);
    if (tty >= 0)
        close(tty);
    if (rv == 0)
        return CLI_OK;
    fprintf(stderr, "corvid: %s\n", errmsg);
    return CLI_USAGE;
}

/* When the session ends: what whoami says on the node that opened it, else now + minutes. */
static int64_t session_end(struct cli *c, const char *url, long minutes)
{
    char errmsg[CMN_ERRMSG_SIZE];
    json_t *who;
    int64_t t = cmn_now_ms(&cmn_clock_system) / 1000 + (int64_t)minutes * 60, at;
    if (cli_get_json_at(c, url, "/certificates/whoami", &who, errmsg) != CLI_OK)
        return t;
    if (cli_parse_time(json_string_value(json_object_get(who, "TwoFactorExpirationDate")), &at))
        t = at;
    json_decref(who);
    return t;
}

int login_main(int argc, char **argv)
{
    struct cli c;
    cli_init(&c);
    const char *duration = NULL;
    int rv = start(&c, argc, argv, login_help, &duration);
    long dflt = 0, max = 0, minutes = 0;
    char code[TF_CODE_DIGITS + 1] = "", errmsg[CMN_ERRMSG_SIZE] = "";
    json_t *body = NULL;
    if (rv != CLI_OK)
        goto out;
    if ((rv = session_limits(&c, &dflt, &max)) != CLI_OK)
        goto out;
    minutes = dflt;
    if (duration != NULL && tf_duration_parse(duration, max, &minutes, errmsg) != 0) {
        fprintf(stderr, "corvid: %s\n", errmsg);
        rv = CLI_USAGE;
        goto out;
    }
    if ((rv = read_code(code)) != CLI_OK)
        goto out;
    /* hasLimits=false: the session is the certificate's, for every connection (a CLI has no
     * cookie jar to keep one in). */
    char path[128];
    snprintf(path, sizeof path, "/authentication/2fa?hasLimits=false&sessionDurationInMin=%ld",
             minutes);
    body = json_pack("{s:s}", "Token", code);
    if (body == NULL) {
        fprintf(stderr, "corvid: out of memory\n");
        rv = CLI_FAILURE;
        goto out;
    }
    struct hc_response r;
    if ((rv = cli_request(&c, "POST", path, body, 0, NULL, &r)) != CLI_OK)
        goto out;
    int64_t until = session_end(&c, r.url, minutes);
    hc_response_fini(&r);
    if (c.json) {
        char iso[40];
        time_t tt = (time_t)until;
        struct tm tm;
        gmtime_r(&tt, &tm);
        strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_t *o = json_pack("{s:s, s:I}", "TwoFactorExpirationDate", iso, "SessionDurationInMin",
                              (json_int_t)minutes);
        cli_print_json(o);
        json_decref(o);
    } else {
        char date[80];
        cli_fmt_local(until, date, sizeof date);
        printf("Logged in until %s on the whole cluster\n", date);
        printf("  (any connection with this certificate; `corvid logout` ends it sooner)\n");
    }
out:
    cmn_cleanse(code, sizeof code);
    json_decref(body);
    cli_fini(&c);
    return rv < 0 ? CLI_OK : rv;
}

int logout_main(int argc, char **argv)
{
    struct cli c;
    cli_init(&c);
    int rv = start(&c, argc, argv, logout_help, NULL);
    struct hc_response r;
    if (rv == CLI_OK &&
        (rv = cli_request(&c, "DELETE", "/authentication/2fa", NULL, 0, NULL, &r)) == CLI_OK) {
        hc_response_fini(&r);
        if (c.json) {
            json_t *o = json_pack("{s:b}", "LoggedOut", 1);
            cli_print_json(o);
            json_decref(o);
        } else {
            printf("Logged out: this certificate's two-factor session ended on the whole "
                   "cluster\n");
        }
    }
    cli_fini(&c);
    return rv < 0 ? CLI_OK : rv;
}
