/* The subcommands of the tributary binary. Each takes its own argv (argv[0]
 * is the subcommand's name) and returns the process exit code: 0 on success,
 * 1 on a runtime failure, 2 on a usage or configuration error. */
#ifndef TRIBUTARY_COMMANDS_H
#define TRIBUTARY_COMMANDS_H

int cmd_broker(int argc, char **argv);
int cmd_simulate(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_tune(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_config(int argc, char **argv);

#endif
