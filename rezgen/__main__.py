from rezgen.cli import main

main()
