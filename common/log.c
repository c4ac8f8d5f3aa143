/* Line-oriented logger: "2026-11-26T13:45:00.123Z INFO  CA-ISSUE message". */
#include "common/log.h"

#include <stdarg.h>
#include <strings.h>
#include <time.h>

static enum cmn_log_level min_level = CMN_LOG_INFO;
static FILE *log_out;

void cmn_log_setup(enum cmn_log_level min, FILE *out)
{
    min_level = min;
    log_out = out;
}

int cmn_log_level_parse(const char *s, enum cmn_log_level *out)
{
    static const struct {
        const char *name;
        enum cmn_log_level level;
    } names[] = {
        {"Debug", CMN_LOG_DEBUG}, {"Trace", CMN_LOG_DEBUG},     {"Information", CMN_LOG_INFO},
        {"Info", CMN_LOG_INFO},   {"Warning", CMN_LOG_WARN},    {"Warn", CMN_LOG_WARN},
        {"Error", CMN_LOG_ERROR}, {"Operations", CMN_LOG_INFO},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(s, names[i].name) == 0) {
            *out = names[i].level;
            return 0;
        }
    }
    return CMN_EINVALID;
}

void cmn_log(enum cmn_log_level level, const char *id, const char *fmt, ...)
{
    static const char *tags[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};
    if (level < min_level)
        return;
    FILE *out = log_out ? log_out : stderr;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    flockfile(out);
    fprintf(out, "%s.%03ldZ %s %-10s ", when, ts.tv_nsec / 1000000, tags[level], id);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(out, fmt, ap);
    va_end(ap);
    fputc('\n', out);
    fflush(out);
    funlockfile(out);
}
