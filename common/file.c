/* Reading secret files with their ownership and mode checked on the open descriptor. */
#include "common/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cmn_read_private_file(const char *path, size_t max, struct cmn_buf *out, char *errmsg)
{
    /* Checked through the descriptor, not the name, so that what is checked is what is read. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return cmn_fail(errmsg, errno == ENOENT ? CMN_ENOTFOUND : CMN_EIO, "cannot open %s: %s",
                        path, strerror(errno));
    struct stat st;
    int rv = 0;
    if (fstat(fd, &st) != 0)
        rv = cmn_fail(errmsg, CMN_EIO, "cannot stat %s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rv = cmn_fail(errmsg, CMN_EINVALID, "%s is not a regular file", path);
    else if (st.st_uid != geteuid())
        rv = cmn_fail(errmsg, CMN_EDENIED,
                      "%s is owned by uid %u, not by the user running this (uid %u): refusing "
                      "a key that another user controls",
                      path, (unsigned)st.st_uid, (unsigned)geteuid());
    else if ((st.st_mode & 077) != 0)
        rv = cmn_fail(errmsg, CMN_EDENIED,
                      "%s has mode %04o: it must be readable by its owner only (chmod 600 %s)",
                      path, (unsigned)(st.st_mode & 07777), path);
    else if ((size_t)st.st_size > max)
        rv = cmn_fail(errmsg, CMN_ETOOBIG, "%s holds %lld bytes, more than the %zu expected", path,
                      (long long)st.st_size, max);
    size_t start = out->len;
    if (rv == 0 && (rv = cmn_buf_reserve(out, max + 1)) != 0)
        cmn_fail(errmsg, rv, "out of memory");
    while (rv == 0) {
        ssize_t got = read(fd, out->data + out->len, max + 1 - (out->len - start));
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rv = cmn_fail(errmsg, CMN_EIO, "cannot read %s: %s", path, strerror(errno));
        } else if (got == 0) {
            break;
        } else {
            out->len += (size_t)got;
            if (out->len - start > max)
                rv = cmn_fail(errmsg, CMN_ETOOBIG, "%s holds more than the %zu bytes expected",
                              path, max);
        }
    }
    close(fd);
    if (rv != 0 && out->len > start) {
        cmn_cleanse(out->data + start, out->len - start);
        out->len = start;
    }
    return rv;
}

int cmn_read_file(const char *path, size_t max, struct cmn_buf *out, char *errmsg)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return cmn_fail(errmsg, CMN_EIO, "cannot read %s: %s", path, strerror(errno));
    uint8_t chunk[8192];
    size_t got, total = 0;
    int rv = 0;
    while (rv == 0 && (got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        total += got;
        if (total > max)
            rv = cmn_fail(errmsg, CMN_ETOOBIG, "%s is larger than %zu bytes", path, max);
        else
            rv = cmn_buf_append(out, chunk, got);
    }
    if (rv == 0 && ferror(f))
        rv = cmn_fail(errmsg, CMN_EIO, "cannot read %s: %s", path, strerror(errno));
    cmn_cleanse(chunk, sizeof chunk); /* it may have held a key */
    fclose(f);
    return rv;
}
