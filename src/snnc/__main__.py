from snnc.compiler.cli import main

main()
