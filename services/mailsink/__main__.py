from services.mailsink.app import main

main()
