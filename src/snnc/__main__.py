from snnc.compiler.tools.cli import main

main()
