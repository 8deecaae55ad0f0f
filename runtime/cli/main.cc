#include "runtime/cli/cli.h"

int main(int argc, char** argv) { return runvm::RunCli(argc, argv); }
