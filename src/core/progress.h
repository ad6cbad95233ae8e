/* How a long job (training, sampling, evaluation, a reproduction) reports to whoever runs it:
 * one callback that receives events (a count of work done, or a line of text meant for the
 * user), so the library never prints and the command line decides what reaches the screen. */
#ifndef DDPM_PROGRESS_H
#define DDPM_PROGRESS_H

/* Where a line belongs: the log (diagnostics, stderr on the command line) or the output
 * (results, stdout). */
typedef enum { PROGRESS_LOG = 0, PROGRESS_OUT = 1 } ProgressStream;

/* Two stages are notes whose line has no line ending, for the front end to complete with
 * what the user can do about it: "interrupted" (a training run stopped and saved its state in
 * the run directory `path`) and "ema" (a job uses the moving average of the weights, not the
 * trained weights themselves). */
typedef struct {
    const char *stage;     /* what is running: "sampling", "training", "interrupted", "ema", ...;
                            * NULL for a plain line */
    long done, total;      /* work done of total in the stage's units (0, 0 when not counted) */
    const char *line;      /* text to show as it stands, with its own line ending ("\n"; a
                            * status line redrawn in place starts with "\r"), except in the two
                            * notes above; NULL for a count */
    ProgressStream stream;
    const char *path;      /* the run directory or file the event is about, or NULL */
    int flush;             /* 1: a measurement in progress, the line should be seen now */
} ProgressEvent;

typedef void (*ProgressFn)(void *user, const ProgressEvent *ev);

/* A callback and its user pointer; fn NULL (or a NULL Progress *) reports nothing. */
typedef struct {
    ProgressFn fn;
    void *user;
} Progress;

/* Send ev (nothing when p or p->fn is NULL). */
void progress_event(const Progress *p, const ProgressEvent *ev);
/* A formatted line on the log or the output; the format carries the line ending. */
void progress_log(const Progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void progress_out(const Progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Ask that the output lines sent so far be seen now (a measurement in progress). */
void progress_flush(const Progress *p);
/* A count: done of total units of a stage (no text). */
void progress_count(const Progress *p, const char *stage, long done, long total);

#endif
