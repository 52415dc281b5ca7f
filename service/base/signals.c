/* Stop requests from signals and from the program. */
#include "service/base/signals.h"

#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

static volatile atomic_int signals_stop;

static void signals_on_stop(int signo)
{
    (void)signo;
    atomic_store(&signals_stop, 1);
}

void signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = signals_on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int signals_stop_requested(void)
{
    return atomic_load(&signals_stop);
}

int signals_sleep_ms(int ms)
{
    for (int slept = 0; slept < ms; slept += 20) {
        if (signals_stop_requested())
            return 1;
        struct timespec ts = {0, (ms - slept < 20 ? ms - slept : 20) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return signals_stop_requested();
}
