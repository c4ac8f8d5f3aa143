/* Shared by the corvid CLI's source files: subcommand entry points and exit codes. */
#ifndef CORVID_TOOLS_CLI_H
#define CORVID_TOOLS_CLI_H

enum cli_exit {
    CLI_OK = 0,        /* done */
    CLI_FAILURE = 1,   /* the operation failed, or the server refused it */
    CLI_USAGE = 2,     /* bad command line, or an input file that cannot be used */
    CLI_NOCONNECT = 3, /* cannot reach the node (or it does not answer HTTP) */
    CLI_TLS = 4,       /* TLS or certificate problem: the node's certificate does not verify,
                        * or the client certificate cannot be used */
};

/* `corvid pki ...`: argv[0] is "pki". Returns an enum cli_exit. */
int pki_main(int argc, char **argv);
/* One-line summary for `corvid --help`. */
extern const char pki_summary[];

/* `corvid admin-channel ...` (tools/corvid/admin.c). */
int admin_main(int argc, char **argv);
extern const char admin_summary[];

/* `corvid certs ...` (tools/corvid/certs.c): client certificates over the HTTPS API. */
int certs_main(int argc, char **argv);
extern const char certs_summary[];

/* `corvid cluster ...` (tools/corvid/cluster.c): topology and membership over the HTTPS API. */
int cluster_main(int argc, char **argv);
extern const char cluster_summary[];

/* `corvid login` and `corvid logout` (tools/corvid/login.c): the certificate's two-factor
 * session. */
int login_main(int argc, char **argv);
int logout_main(int argc, char **argv);
extern const char login_summary[];
extern const char logout_summary[];

/* Moves global options given before the command to after it (tools/corvid/remote.c). */
char **cli_hoist_globals(int argc, char **argv);

#endif
