from tap_callreports.cli import main

main()
