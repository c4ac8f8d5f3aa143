/* Shared by the corvid CLI's source files: subcommand entry points and exit codes. */
#ifndef CORVID_TOOLS_CLI_H
#define CORVID_TOOLS_CLI_H

enum cli_exit {
    CLI_OK = 0,      /* done */
    CLI_FAILURE = 1, /* the operation failed */
    CLI_USAGE = 2,   /* bad command line */
    CLI_NOCONNECT = 3, /* cannot reach the node */
};

/* `corvid pki ...`: argv[0] is "pki". Returns an enum cli_exit. */
int pki_main(int argc, char **argv);
/* One-line summary for `corvid --help`. */
extern const char pki_summary[];

/* `corvid admin-channel ...` (tools/corvid/admin.c). */
int admin_main(int argc, char **argv);
extern const char admin_summary[];

#endif
