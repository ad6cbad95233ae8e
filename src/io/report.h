/* The reproduction report: one self-contained HTML page (every image embedded as a data:
 * URI, CSS inline, no script, nothing fetched) built from what a `ddpm reproduce`
 * directory holds. Layout of that directory, which this file reads and nothing else:
 *   reproduce.json            profile, configuration and machine
 *   stages.json               seconds per finished stage
 *   part1/ part2/ part3/      training run directories (config.json, metrics.json, *.png)
 *   samples/part2-*.png|gif   samples/part3-*.png|gif     sampled after training
 *   eval/part1.json eval/part2.json eval/part3.json       ddpm eval results */
#ifndef DDPM_REPORT_H
#define DDPM_REPORT_H

#include <stddef.h>

/* Writes dir/index.html atomically. Missing parts are reported as "not run" rather than
 * failing, so a partial reproduction still gets a page. Returns 0 or -1 with err_msg(). */
int report_write(const char *dir);

/* Standard base64 (RFC 4648, with padding) of n bytes into a new string. */
char *base64_encode(const unsigned char *data, size_t n);

#endif
