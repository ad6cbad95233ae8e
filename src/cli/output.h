/* What the subcommands print: an error as "ddpm <cmd>: <err_msg()>", and the library's
 * progress events (core/progress.h) as the lines the command line has always shown. Used by
 * main.c and every cmd_*.c file. */
#ifndef DDPM_CLI_OUTPUT_H
#define DDPM_CLI_OUTPUT_H

#include "core/progress.h"

/* Print "ddpm <cmd>: <err_msg()>" on stderr and return status (1 error, 2 usage error). */
int cli_fail(const char *cmd, int status);

/* A --device name that no backend answers to: prints "ddpm <cmd>: --device: ..." (the
 * names there are) and returns 2; 0 for NULL (the default) or a known name. */
int cli_check_device(const char *cmd, const char *device);

/* State of the printer: whether stderr is a terminal (then a sampling job's counts are drawn
 * as a "sampling: NN%" status line), and that line's start time and last percentage. */
typedef struct {
    int tty;
    const char *stage; /* the counted stage drawn last (NULL: none yet) */
    long last_done;
    double t0;
    int last_pct;
} CliOutput;

/* A Progress that prints through out (initialised here): lines go to stderr (log) or stdout
 * (output) as they are; "interrupted" events get the "ddpm train:" prefix and the resume
 * command, "ema" events the option that turns the moving average off; counts of the stages
 * "sampling", "decoding" and "exporting" draw a status line on a terminal. */
Progress cli_output(CliOutput *out);

/* Threads per process: the option's value when given, else the default threads, or in a
 * data-parallel run with several processes on this machine its cores shared among them. */
int cli_rank_threads(int threads, int given);

#endif
