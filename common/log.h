/* The one logger: levels and message ids (e.g. CA-ISSUE, RFT-ELECT). Only node/ and tools/ log;
 * libraries return errors instead. Never pass a secret to it. */
#ifndef CORVID_COMMON_LOG_H
#define CORVID_COMMON_LOG_H

#include <stdio.h>

#include "common/err.h"

enum cmn_log_level { CMN_LOG_DEBUG, CMN_LOG_INFO, CMN_LOG_WARN, CMN_LOG_ERROR };

/* Sets the minimum level and the stream (borrowed; stderr when NULL). */
void cmn_log_setup(enum cmn_log_level min, FILE *out);
/* Parses "Debug|Information|Warning|Error" (RavenDB's Logs.Level names) or the short forms. */
int cmn_log_level_parse(const char *s, enum cmn_log_level *out) CMN_MUST_CHECK;
void cmn_log(enum cmn_log_level level, const char *id, const char *fmt, ...) CMN_PRINTF(3, 4);

#define CMN_DEBUG(id, ...) cmn_log(CMN_LOG_DEBUG, id, __VA_ARGS__)
#define CMN_INFO(id, ...)  cmn_log(CMN_LOG_INFO, id, __VA_ARGS__)
#define CMN_WARN(id, ...)  cmn_log(CMN_LOG_WARN, id, __VA_ARGS__)
#define CMN_ERROR(id, ...) cmn_log(CMN_LOG_ERROR, id, __VA_ARGS__)

#endif
