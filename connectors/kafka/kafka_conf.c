/* Layered librdkafka configuration and the bridge from librdkafka's log to ours. */
#include "connectors/kafka/kafka_conf.h"

#include "service/base/error.h"
#include "service/base/log.h"

#include <string.h>

static void kafka_conf_log(const rd_kafka_t *rk, int level, const char *facility, const char *buf)
{
    /* syslog levels: 0..3 are errors, 4 warnings, 5..6 notices/info, 7 debug */
    /* One kafka.* section configures consumers and producers alike, so each
     * of them ignoring the other's properties is expected, not a warning. */
    if (strcmp(facility, "CONFWARN") == 0 && strstr(buf, "will be ignored by this"))
        level = 7;
    enum log_level ours = level <= 3   ? LOG_ERROR
                          : level == 4 ? LOG_WARN
                          : level <= 6 ? LOG_INFO
                                       : LOG_DEBUG;
    log_write(ours, "kafka %s %s: %s", rd_kafka_name(rk), facility, buf);
}

static int kafka_conf_apply(rd_kafka_conf_t *conf, const struct kafka_prop *props, size_t n,
                            char *err, size_t errsz)
{
    for (size_t i = 0; i < n; i++) {
        char reason[256];
        if (rd_kafka_conf_set(conf, props[i].key, props[i].value, reason, sizeof reason) !=
            RD_KAFKA_CONF_OK)
            return tb_fail(err, errsz, TB_CONFIG, "kafka.%s: %s", props[i].key, reason);
    }
    return TB_OK;
}

rd_kafka_conf_t *kafka_conf_build(const struct kafka_prop *defaults, size_t ndefaults,
                                  const struct kafka_prop *props, size_t nprops,
                                  const struct kafka_prop *forced, size_t nforced, char *err,
                                  size_t errsz)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, kafka_conf_log);
    if (kafka_conf_apply(conf, defaults, ndefaults, err, errsz) != TB_OK ||
        kafka_conf_apply(conf, props, nprops, err, errsz) != TB_OK ||
        kafka_conf_apply(conf, forced, nforced, err, errsz) != TB_OK) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}
