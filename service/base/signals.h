/* Process-wide stop request: set by SIGINT/SIGTERM or by the program itself,
 * polled by every long-running loop. */
#ifndef TRIBUTARY_SIGNALS_H
#define TRIBUTARY_SIGNALS_H

/* Installs SIGINT and SIGTERM handlers that request a stop, and ignores SIGPIPE. */
void signals_install(void);

/* True once a stop was requested. Async-signal-safe and thread-safe. */
int signals_stop_requested(void);

/* Sleeps up to ms milliseconds, returning early (true) if a stop is requested. */
int signals_sleep_ms(int ms);

#endif
