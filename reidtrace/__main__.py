from reidtrace.cli import main

main()
