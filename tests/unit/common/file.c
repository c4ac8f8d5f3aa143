/* common/file: a secret file is read only when it is private to this user. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/file.h"

struct dir {
    char path[64];
    char file[96];
};

static int setup(void **state)
{
    struct dir *d = calloc(1, sizeof *d);
    snprintf(d->path, sizeof d->path, "/tmp/corvid-file-test.XXXXXX");
    if (mkdtemp(d->path) == NULL)
        return -1;
    snprintf(d->file, sizeof d->file, "%s/key", d->path);
    *state = d;
    return 0;
}

static int teardown(void **state)
{
    struct dir *d = *state;
    unlink(d->file);
    rmdir(d->path);
    free(d);
    return 0;
}

static void put(const struct dir *d, const char *bytes, size_t n, mode_t mode)
{
    unlink(d->file);
    FILE *f = fopen(d->file, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, n, f), n);
    fclose(f);
    assert_int_equal(chmod(d->file, mode), 0);
}

/* Reading must fail with code, name the file and the problem, and leave out untouched. */
static void refused(const struct dir *d, const char *path, size_t max, int code, const char *why)
{
    struct cmn_buf out;
    cmn_buf_init(&out, true);
    assert_int_equal(cmn_buf_append(&out, "keep", 4), 0);
    char errmsg[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(cmn_read_private_file(path, max, &out, errmsg), code);
    assert_int_equal(out.len, 4);
    assert_non_null(strstr(errmsg, path));
    if (why && strstr(errmsg, why) == NULL)
        fail_msg("'%s' does not say '%s'", errmsg, why);
    assert_null(strstr(errmsg, "SECRET"));
    cmn_buf_fini(&out);
    (void)d;
}

static void reads_private_files(void **state)
{
    struct dir *d = *state;
    static const mode_t ok[] = {0600, 0400};
    for (size_t i = 0; i < 2; i++) {
        put(d, "SECRET", 6, ok[i]);
        struct cmn_buf out;
        cmn_buf_init(&out, true);
        char errmsg[CMN_ERRMSG_SIZE] = "";
        assert_int_equal(cmn_read_private_file(d->file, 64, &out, errmsg), 0);
        assert_int_equal(out.len, 6);
        assert_memory_equal(out.data, "SECRET", 6);
        cmn_buf_fini(&out);
    }
    put(d, "SECRET", 6, 0600);
    struct cmn_buf out;
    cmn_buf_init(&out, true);
    assert_int_equal(cmn_read_private_file(d->file, 6, &out, NULL), 0); /* exactly max */
    cmn_buf_fini(&out);
}

static void refuses(void **state)
{
    struct dir *d = *state;
    static const mode_t bad[] = {0644, 0640, 0604, 0660, 0666, 0601, 0610};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        put(d, "SECRET", 6, bad[i]);
        char mode[8];
        snprintf(mode, sizeof mode, "%04o", (unsigned)bad[i]);
        refused(d, d->file, 64, CMN_EDENIED, mode);
    }
    put(d, "SECRET", 6, 0600);
    refused(d, d->file, 5, CMN_ETOOBIG, "more than");
    refused(d, d->path, 64, CMN_EINVALID, "not a regular file");
    unlink(d->file);
    refused(d, d->file, 64, CMN_ENOTFOUND, "No such file");
    if (geteuid() == 0) { /* only root can hand a file to another user */
        put(d, "SECRET", 6, 0600);
        assert_int_equal(chown(d->file, 65534, 65534), 0);
        refused(d, d->file, 64, CMN_EDENIED, "owned by uid 65534");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(reads_private_files, setup, teardown),
        cmocka_unit_test_setup_teardown(refuses, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
