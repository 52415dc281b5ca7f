/* Leveled, thread-safe logging to stderr, one line per event. */
#ifndef TRIBUTARY_LOG_H
#define TRIBUTARY_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3, LOG_OFF = 4 };

/* Sets the lowest level that is printed (default LOG_INFO). */
void log_set_level(enum log_level level);

/* Parses "debug", "info", "warn", "error" or "off"; returns 0 or TB_CONFIG. */
int log_parse_level(const char *name, enum log_level *out);

/* Names the calling thread in its log lines ("worker-1"); name is copied. */
void log_set_thread_name(const char *name);

void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_write(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)

#endif
