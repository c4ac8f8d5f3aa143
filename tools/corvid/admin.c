/* `corvid admin-channel`: a console on a node's admin socket (RavenDB's `rvn admin-channel`). */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "tools/corvid/cli.h"

const char admin_summary[] = "console on a local node's admin socket (RavenDB's server CLI)";

static const char admin_usage[] =
    "usage: corvid admin-channel (--data-dir DIR | --config FILE) [COMMAND [ARG...]]\n"
    "\n"
    "Connects to the admin socket of a node running on this machine (DIR/admin.sock, owner\n"
    "only) and runs COMMAND, or gives a `corvid>` prompt when no command is given.\n"
    "Commands: info, clusterStatus, generateClientCert, trustClientCert, trustServerCert,\n"
    "addNode, removeNode, help (`help` lists their arguments).\n"
    "Relative file and folder arguments are resolved against the current directory.\n"
    "\n"
    "Examples:\n"
    "  corvid admin-channel --config cluster-configs/local-3node/A.json info\n"
    "  corvid admin-channel --data-dir var/local/A generateClientCert admin var/local/admin\n"
    "  corvid admin-channel --data-dir var/local/A trustClientCert ops ops.pfx\n"
    "\n"
    "Exit status: 0 ok, 1 refused or failed, 2 usage, 3 cannot connect.\n";

static int data_dir_from_config(const char *path, char *out, size_t cap)
{
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    if (root == NULL) {
        fprintf(stderr, "corvid: cannot read %s: %s\n", path, err.text);
        return CLI_USAGE;
    }
    const char *dir = json_string_value(json_object_get(root, "DataDir"));
    if (dir == NULL) {
        fprintf(stderr, "corvid: %s has no DataDir\n", path);
        json_decref(root);
        return CLI_USAGE;
    }
    if (dir[0] == '/') {
        snprintf(out, cap, "%s", dir);
    } else {
        char copy[PATH_MAX];
        snprintf(copy, sizeof copy, "%s", path);
        snprintf(out, cap, "%s/%s", dirname(copy), dir);
    }
    json_decref(root);
    return 0;
}

static int connect_socket(const char *dir)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (snprintf(sa.sun_path, sizeof sa.sun_path, "%s/admin.sock", dir) >=
        (int)sizeof sa.sun_path) {
        fprintf(stderr, "corvid: the path %s/admin.sock is too long\n", dir);
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr, "corvid: cannot connect to %s: %s (is the node running?)\n", sa.sun_path,
                strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads one answer, printing its lines; returns its exit code, or -1 if the node hung up. */
static int read_answer(FILE *in)
{
    char line[65536];
    while (fgets(line, sizeof line, in) != NULL) {
        if (line[0] == '.' && line[1] != '.')
            return atoi(line + 1);
        fputs(line[0] == '.' ? line + 1 : line, stdout);
    }
    return -1;
}

/* Arguments that name files or folders are made absolute: the node has its own directory. */
static void absolutize(char **argv, int argc, char store[][PATH_MAX])
{
    int path_arg = -1;
    if (argc >= 3 &&
        (strcmp(argv[0], "generateClientCert") == 0 || strcmp(argv[0], "trustClientCert") == 0 ||
         strcmp(argv[0], "trustServerCert") == 0))
        path_arg = 2;
    if (argc >= 5 && strcmp(argv[0], "addNode") == 0)
        path_arg = 4;
    if (path_arg < 0 || argv[path_arg][0] == '/')
        return;
    if (realpath(argv[path_arg], store[path_arg]) != NULL)
        argv[path_arg] = store[path_arg];
}

static int run_one(int fd, FILE *in, int argc, char **argv)
{
    char store[8][PATH_MAX];
    char *args[8];
    if (argc > 8) {
        fprintf(stderr, "corvid: too many arguments\n");
        return CLI_USAGE;
    }
    memcpy(args, argv, (size_t)argc * sizeof *args);
    absolutize(args, argc, store);
    char line[8192];
    size_t n = 0;
    for (int i = 0; i < argc; i++) {
        if (strchr(args[i], '\n') || strchr(args[i], '"')) {
            fprintf(stderr, "corvid: arguments cannot contain newlines or double quotes\n");
            return CLI_USAGE;
        }
        bool quote = strchr(args[i], ' ') || strchr(args[i], '\t') || args[i][0] == '\0';
        int w = snprintf(line + n, sizeof line - n, "%s%s%s%s", i ? " " : "", quote ? "\"" : "",
                         args[i], quote ? "\"" : "");
        if (w < 0 || (size_t)w >= sizeof line - n) {
            fprintf(stderr, "corvid: command too long\n");
            return CLI_USAGE;
        }
        n += (size_t)w;
    }
    line[n++] = '\n';
    if (send_all(fd, line, n) != 0)
        return CLI_NOCONNECT;
    int code = read_answer(in);
    return code < 0 ? CLI_NOCONNECT : code;
}

int admin_main(int argc, char **argv)
{
    char dir[PATH_MAX] = "";
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(admin_usage, stdout);
            return CLI_OK;
        } else if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc) {
            snprintf(dir, sizeof dir, "%s", argv[++i]);
        } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            int rv = data_dir_from_config(argv[++i], dir, sizeof dir);
            if (rv != 0)
                return rv;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "corvid admin-channel: unknown option '%s'\n\n%s", argv[i],
                    admin_usage);
            return CLI_USAGE;
        } else {
            break;
        }
    }
    if (!dir[0]) {
        fputs(admin_usage, stderr);
        return CLI_USAGE;
    }
    int fd = connect_socket(dir);
    if (fd < 0)
        return CLI_NOCONNECT;
    FILE *in = fdopen(dup(fd), "r");
    int code;
    if (i < argc) {
        code = run_one(fd, in, argc - i, argv + i);
    } else {
        bool tty = isatty(0);
        char line[8192];
        int worst = CLI_OK; /* a script's exit status: the worst answer */
        code = CLI_OK;
        for (;;) {
            if (tty) {
                fputs("corvid> ", stdout);
                fflush(stdout);
            }
            if (fgets(line, sizeof line, stdin) == NULL)
                break;
            line[strcspn(line, "\n")] = '\0';
            if (strcmp(line, "exit") == 0 || strcmp(line, "quit") == 0)
                break;
            size_t n = strlen(line);
            line[n++] = '\n';
            if (send_all(fd, line, n) != 0 || (code = read_answer(in)) < 0) {
                fprintf(stderr, "corvid: the node closed the admin channel\n");
                code = CLI_NOCONNECT;
                break;
            }
            if (code > worst)
                worst = code;
        }
        if (!tty && code != CLI_NOCONNECT)
            code = worst;
    }
    fclose(in);
    close(fd);
    return code;
}
