from tracker.simulator import main

main()
